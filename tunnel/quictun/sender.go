package quictun

import "github.com/strait/strait/tunnel"

// SenderState reads what quic-go knows of the path as this end's sender
// (see tunnel.SenderStateOf).
func (s *session) SenderState() tunnel.SenderState {
	st := s.conn.ConnectionStats()
	state := tunnel.SenderState{
		Window:      st.CongestionWindow,
		SmoothedRTT: st.SmoothedRTT,
		MinRTT:      st.MinRTT,
		PacketsSent: st.PacketsSent,
		PacketsLost: st.PacketsLost,
	}
	if s.slowStart != nil {
		state.PhaseKnown, state.LeftSlowStart = true, s.slowStart.LeftSlowStart()
	}
	return state
}

// NeedlessWatch reports whether the session's phase is followed although
// its edge has stopped FEC on a path it found short (see phase.go and
// tunnel.NeedlessWatch).
func (s *session) NeedlessWatch() bool {
	return s.slowStart != nil && !s.longPath()
}
