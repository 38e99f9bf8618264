package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"slices"
	"syscall"
	"time"
)

// cmdEcho answers every UDP datagram with itself (the self-test's far end).
func cmdEcho(args []string) error {
	fs := flag.NewFlagSet("echo", flag.ExitOnError)
	listen := fs.String("listen", addrOverseas+":7007", "UDP address")
	_ = fs.Parse(args)
	c, err := net.ListenPacket("udp", *listen)
	if err != nil {
		return err
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	go func() { <-ctx.Done(); c.Close() }()
	fmt.Println("echo: ready")
	buf := make([]byte, 2048)
	for {
		n, from, err := c.ReadFrom(buf)
		if err != nil {
			return nil // closed on signal
		}
		_, _ = c.WriteTo(buf[:n], from)
	}
}

// probeResult is what a probe measured, as JSON on stdout.
type probeResult struct {
	Sent      int     `json:"sent"`
	Received  int     `json:"received"`
	Loss      float64 `json:"loss"` // round trip
	MeanRTTms float64 `json:"rtt_mean_ms"`
	P50RTTms  float64 `json:"rtt_p50_ms"`
	P99RTTms  float64 `json:"rtt_p99_ms"`
	Reordered int     `json:"reordered"` // replies arriving after a later-sent one
}

// cmdProbe sends count numbered datagrams at a steady pace and measures the
// round trip of each echo, then waits for stragglers.
func cmdProbe(args []string) error {
	fs := flag.NewFlagSet("probe", flag.ExitOnError)
	to := fs.String("to", addrOverseas+":7007", "echo address")
	count := fs.Int("count", 10000, "datagrams to send")
	pps := fs.Int("pps", 2000, "datagrams per second")
	wait := fs.Duration("wait", 2*time.Second, "how long to wait for replies after the last send")
	_ = fs.Parse(args)
	c, err := net.Dial("udp", *to)
	if err != nil {
		return err
	}
	defer c.Close()
	start := time.Now()
	rtts := make([]time.Duration, 0, *count)
	reordered, lastSeq := 0, -1
	recvDone := make(chan struct{})
	go func() {
		defer close(recvDone)
		buf := make([]byte, 64)
		for {
			n, err := c.Read(buf)
			if err != nil {
				return
			}
			if n < 16 {
				continue
			}
			seq := int(binary.BigEndian.Uint64(buf))
			sent := time.Duration(binary.BigEndian.Uint64(buf[8:]))
			rtts = append(rtts, time.Since(start)-sent)
			if seq < lastSeq {
				reordered++
			}
			lastSeq = max(lastSeq, seq)
		}
	}()
	payload := make([]byte, 64)
	gap := time.Second / time.Duration(max(*pps, 1))
	for i := range *count {
		if d := time.Until(start.Add(time.Duration(i) * gap)); d > 0 {
			time.Sleep(d)
		}
		binary.BigEndian.PutUint64(payload, uint64(i))
		binary.BigEndian.PutUint64(payload[8:], uint64(time.Since(start)))
		if _, err := c.Write(payload); err != nil {
			return err
		}
	}
	time.Sleep(*wait)
	_ = c.SetReadDeadline(time.Now())
	<-recvDone
	r := probeResult{Sent: *count, Received: len(rtts), Reordered: reordered}
	r.Loss = 1 - float64(r.Received)/float64(r.Sent)
	if len(rtts) > 0 {
		slices.Sort(rtts)
		var sum time.Duration
		for _, d := range rtts {
			sum += d
		}
		r.MeanRTTms = ms(sum / time.Duration(len(rtts)))
		r.P50RTTms = ms(rtts[len(rtts)/2])
		r.P99RTTms = ms(rtts[len(rtts)*99/100])
	}
	return json.NewEncoder(os.Stdout).Encode(r)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// cmdSelftest brings a link up, sends datagrams across it and checks what the
// issue asks of the emulator: mean RTT within 5 % of 2×delay, round-trip loss
// within ±20 % of what the per-direction loss implies, and no reordering
// without jitter. A second phase with burst loss is reported, not judged
// (its loss count varies far more at 10 000 packets). It removes its
// namespaces however it ends.
func cmdSelftest(args []string) error {
	fs := flag.NewFlagSet("selftest", flag.ExitOnError)
	prefix := fs.String("ns", "lst", "namespace prefix")
	delay := fs.Duration("delay", 75*time.Millisecond, "one-way delay")
	loss := fs.Float64("loss", 0.03, "per-direction loss")
	count := fs.Int("count", 10000, "datagrams per phase")
	pps := fs.Int("pps", 2000, "datagrams per second")
	burst := fs.Float64("burst", 4, "mean loss run of the burst phase (0 skips it)")
	seed := fs.Uint64("seed", 1, "random seed")
	_ = fs.Parse(args)

	e, err := start(*prefix, Params{Delay: *delay, Loss: *loss}, *seed)
	if err != nil {
		return err
	}
	defer e.stop()
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	self, err := os.Executable()
	if err != nil {
		return err
	}
	echo := exec.CommandContext(ctx, "ip", "netns", "exec", e.topo.nsOvs(), self, "echo")
	echo.Stderr = os.Stderr
	echoOut, _ := echo.StdoutPipe()
	if err := echo.Start(); err != nil {
		return err
	}
	defer func() { _ = echo.Process.Signal(syscall.SIGTERM); _ = echo.Wait() }()
	if _, err := echoOut.Read(make([]byte, 64)); err != nil { // "echo: ready"
		return fmt.Errorf("echo server did not start: %w", err)
	}

	probe := func() (probeResult, error) {
		var r probeResult
		out, err := exec.CommandContext(ctx, "ip", "netns", "exec", e.topo.nsDom(), self, "probe",
			"-count", fmt.Sprint(*count), "-pps", fmt.Sprint(*pps), "-wait", (2**delay + time.Second).String()).Output()
		if err != nil {
			return r, fmt.Errorf("probe: %w", err)
		}
		return r, json.Unmarshal(out, &r)
	}

	r, err := probe()
	if err != nil {
		return err
	}
	wantRTT := ms(2 * *delay)
	wantLoss := 1 - (1-*loss)*(1-*loss)
	fmt.Printf("selftest random loss: delay %v, loss %.3f per direction: %s\n", *delay, *loss, mustJSON(r))
	var failures []error
	if math.Abs(r.MeanRTTms-wantRTT) > 0.05*wantRTT {
		failures = append(failures, fmt.Errorf("mean RTT %.2fms not within 5%% of %.2fms", r.MeanRTTms, wantRTT))
	}
	if math.Abs(r.Loss-wantLoss) > 0.2*wantLoss {
		failures = append(failures, fmt.Errorf("round-trip loss %.4f not within ±20%% of %.4f", r.Loss, wantLoss))
	}
	if r.Reordered != 0 {
		failures = append(failures, fmt.Errorf("%d datagrams reordered without jitter", r.Reordered))
	}
	fmt.Printf("  RTT %.2fms (want %.2fms ±5%%), loss %.4f (want %.4f ±20%%), reordered %d\n",
		r.MeanRTTms, wantRTT, r.Loss, wantLoss, r.Reordered)

	if *burst > 1 {
		e.setParams(Params{Delay: *delay, Loss: *loss, Burst: *burst})
		rb, err := probe()
		if err != nil {
			return err
		}
		fmt.Printf("selftest burst loss (mean run %.1f, reported only): %s\n", *burst, mustJSON(rb))
	}
	fmt.Printf("emulator stats: %s\n", mustJSON(e.report()))
	if err := errors.Join(failures...); err != nil {
		return fmt.Errorf("selftest FAILED: %w", err)
	}
	fmt.Println("selftest PASSED")
	return nil
}
