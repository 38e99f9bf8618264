package pool

import (
	"testing"
	"time"
)

// loads builds n idle-RTT sessions carrying the given streams each.
func loads(streams ...int) []sessionLoad {
	out := make([]sessionLoad, len(streams))
	for i, n := range streams {
		out[i] = sessionLoad{streams: n, srtt: 150 * time.Millisecond, minRTT: 150 * time.Millisecond}
	}
	return out
}

func testScaler() *scaler {
	return newScaler(Config{SessionsPerRelay: 2, MaxSessionsPerRelay: 8,
		Scale: ScaleConfig{TargetStreams: 16, MaxStreams: 100, MaxDials: 3, ShrinkAfter: 30 * time.Second,
			CongestionCooldown: time.Second}})
}

// TestScalerDecide: one decision per state, from a fresh scaler (no
// hysteresis state yet) at the same instant.
func TestScalerDecide(t *testing.T) {
	congested := loads(10, 2)
	congested[0].srtt = 400 * time.Millisecond // > 150 + 150
	overdue := loads(1, 0)
	overdue[0].overdue = true
	idleOverdue := loads(0, 0)
	idleOverdue[0].overdue = true // no streams: a dead or idle session, not congestion
	loopback := loads(5, 5)
	for i := range loopback {
		loopback[i].minRTT, loopback[i].srtt = 200*time.Microsecond, 20*time.Millisecond // 100× but under the floor
	}
	nearCap := loads(90, 0)
	tests := []struct {
		name   string
		target int // TargetStreams; 0 means 16
		in     scaleInput
		want   decision
	}{
		{"idle at min", 0, scaleInput{sessions: loads(0, 0), slots: 2}, decision{}},
		{"at 3/4 of target", 0, scaleInput{sessions: loads(12, 12), slots: 2}, decision{}},
		{"past 3/4 of target", 0, scaleInput{sessions: loads(13, 12), slots: 2}, decision{grow, 1, reasonStreams}},
		{"burst: bounded by dial concurrency", 0, scaleInput{sessions: loads(128, 128), slots: 2}, decision{grow, 3, reasonStreams}},
		{"burst: dials in flight count", 0, scaleInput{sessions: loads(128, 128), slots: 4, dialing: 2}, decision{grow, 1, reasonStreams}},
		{"burst: bounded by max", 0, scaleInput{sessions: loads(128, 128, 0, 0, 0, 0, 0), slots: 7}, decision{grow, 1, reasonStreams}},
		{"at max", 0, scaleInput{sessions: loads(128, 128, 0, 0, 0, 0, 0, 0), slots: 8}, decision{}},
		{"dialing covers the load", 0, scaleInput{sessions: loads(13, 12), slots: 3, dialing: 1}, decision{}},
		{"rtt inflated", 0, scaleInput{sessions: congested, slots: 2}, decision{grow, 1, reasonRTT}},
		{"rtt inflated, dial in flight", 0, scaleInput{sessions: congested, slots: 3, dialing: 1}, decision{}},
		{"probe overdue with streams", 0, scaleInput{sessions: overdue, slots: 2}, decision{grow, 1, reasonOverdue}},
		{"probe overdue, no streams", 0, scaleInput{sessions: idleOverdue, slots: 2}, decision{}},
		{"loopback jitter is not congestion", 0, scaleInput{sessions: loopback, slots: 2}, decision{}},
		{"near the stream cap", 1000, scaleInput{sessions: nearCap, slots: 2}, decision{grow, 1, reasonStreamCap}},
		{"low load, but wait ShrinkAfter", 0, scaleInput{sessions: loads(0, 0, 0), slots: 3}, decision{}},
		{"websocket floor", 0, scaleInput{sessions: loads(0, 0), slots: 2, floor: 4}, decision{grow, 2, reasonWebSocket}},
		{"websocket floor: bounded by dial concurrency", 0, scaleInput{sessions: loads(0, 0), slots: 2, floor: 8}, decision{grow, 3, reasonWebSocket}},
		{"websocket floor: dials in flight count", 0, scaleInput{sessions: loads(0, 0), slots: 4, dialing: 2, floor: 4}, decision{}},
		{"websocket floor: streams ask for more", 0, scaleInput{sessions: loads(13, 12), slots: 2, floor: 3}, decision{grow, 1, reasonStreams}},
		{"websocket floor below min", 0, scaleInput{sessions: loads(0, 0), slots: 2, floor: 1}, decision{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testScaler()
			if tt.target != 0 {
				s.target = tt.target
			}
			if got := s.decide(time.Unix(1000, 0), tt.in); got != tt.want {
				t.Errorf("decide = %+v; want %+v", got, tt.want)
			}
		})
	}
}

// TestScalerHysteresis: a sequence of observations of one relay; the
// scaler grows past ¾ of the target, shrinks only after the load has
// stayed at or below half the target on one session fewer for ShrinkAfter,
// one session per ShrinkAfter, never below min nor the WebSocket floor,
// and spaces growth for
// congestion by the cooldown.
func TestScalerHysteresis(t *testing.T) {
	congested := loads(8, 8, 8)
	congested[0].overdue = true
	steps := []struct {
		at   time.Duration
		in   scaleInput
		want decision
	}{
		{0, scaleInput{sessions: loads(20, 20), slots: 2}, decision{grow, 2, reasonStreams}}, // ⌈40/12⌉ = 4
		{time.Second, scaleInput{sessions: loads(10, 10, 10, 10), slots: 4}, decision{}},
		// 24 streams fit on 3 sessions at half the target (3·8): low.
		{2 * time.Second, scaleInput{sessions: loads(6, 6, 6, 6), slots: 4}, decision{}},  // low since 2s
		{20 * time.Second, scaleInput{sessions: loads(7, 7, 7, 7), slots: 4}, decision{}}, // 28 > 24: no longer low
		{21 * time.Second, scaleInput{sessions: loads(6, 6, 6, 6), slots: 4}, decision{}}, // low again since 21s
		{50 * time.Second, scaleInput{sessions: loads(6, 6, 6, 6), slots: 4}, decision{}},
		{51 * time.Second, scaleInput{sessions: loads(6, 6, 6, 6), slots: 4}, decision{shrink, 1, reasonIdle}},
		{52 * time.Second, scaleInput{sessions: loads(0, 0, 0), slots: 3}, decision{}}, // one per ShrinkAfter
		{81 * time.Second, scaleInput{sessions: loads(0, 0, 0), slots: 3}, decision{shrink, 1, reasonIdle}},
		{200 * time.Second, scaleInput{sessions: loads(0, 0), slots: 2}, decision{}},              // never below min
		{250 * time.Second, scaleInput{sessions: loads(0, 0, 0), slots: 3, floor: 3}, decision{}}, // nor below the WebSocket floor
		{290 * time.Second, scaleInput{sessions: loads(0, 0, 0), slots: 3, floor: 3}, decision{}},
		// Congestion adds one session per cooldown, and holds off shrinking.
		{300 * time.Second, scaleInput{sessions: congested, slots: 3}, decision{grow, 1, reasonOverdue}},
		{300*time.Second + 500*time.Millisecond, scaleInput{sessions: append(congested, loads(0)...), slots: 4}, decision{}},
		{301 * time.Second, scaleInput{sessions: append(congested, loads(0)...), slots: 4}, decision{grow, 1, reasonOverdue}},
		{400 * time.Second, scaleInput{sessions: append(congested, loads(0, 0)...), slots: 5}, decision{grow, 1, reasonOverdue}},
	}
	s := testScaler()
	start := time.Unix(1000, 0)
	for i, st := range steps {
		if got := s.decide(start.Add(st.at), st.in); got != st.want {
			t.Errorf("step %d at %v: decide = %+v; want %+v", i, st.at, got, st.want)
		}
	}
}

func TestCeilDiv(t *testing.T) {
	for _, tt := range []struct {
		a    int
		b    float64
		want int
	}{{0, 12, 0}, {1, 12, 1}, {12, 12, 1}, {13, 12, 2}, {256, 12, 22}} {
		if got := ceilDiv(tt.a, tt.b); got != tt.want {
			t.Errorf("ceilDiv(%d, %v) = %d; want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
