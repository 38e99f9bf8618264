package admin

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/strait/strait/tunnel/wstun"
)

var tcpCongestionDesc = prometheus.NewDesc("strait_tunnel_tcp_congestion",
	"Live WebSocket tunnel sessions by the TCP congestion control their socket runs, as the kernel reports it.",
	[]string{"algorithm"}, nil)

// TCPCongestion exports stats as strait_tunnel_tcp_congestion{algorithm}:
// which congestion control the WebSocket tunnel's sessions actually got
// (tcp_congestion: auto may fall back from bbr to cubic or the default).
func TCPCongestion(reg prometheus.Registerer, stats *wstun.CongestionStats) {
	reg.MustRegister(congestionCollector{stats})
}

// congestionCollector reads the counts at scrape time.
type congestionCollector struct{ stats *wstun.CongestionStats }

func (c congestionCollector) Describe(ch chan<- *prometheus.Desc) { ch <- tcpCongestionDesc }

func (c congestionCollector) Collect(ch chan<- prometheus.Metric) {
	for cc, n := range c.stats.Sessions() {
		ch <- prometheus.MustNewConstMetric(tcpCongestionDesc, prometheus.GaugeValue, float64(n), cc)
	}
}
