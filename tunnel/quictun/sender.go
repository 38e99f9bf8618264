package quictun

import "github.com/strait/strait/tunnel"

// SenderState reads what quic-go knows of the path as this end's sender
// (see tunnel.SenderStateOf).
func (s *session) SenderState() tunnel.SenderState {
	st := s.conn.ConnectionStats()
	return tunnel.SenderState{
		Window:      st.CongestionWindow,
		SmoothedRTT: st.SmoothedRTT,
		MinRTT:      st.MinRTT,
		PacketsSent: st.PacketsSent,
		PacketsLost: st.PacketsLost,
	}
}
