package metrics

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"
)

var (
	descStreamHead = prometheus.NewDesc(Namespace+"_stream_head_position",
		"Last position of the LEDGER stream (all nodes' appends), or of this writer when the stream cannot be read.", nil, nil)
	descPosition = prometheus.NewDesc(Namespace+"_projection_position",
		"Last stream position the read model has applied.", []string{"read_model"}, nil)
	descLagEvents = prometheus.NewDesc(Namespace+"_projection_lag_events",
		"Stream positions the read model has not applied yet.", []string{"read_model"}, nil)
	descLagSeconds = prometheus.NewDesc(Namespace+"_projection_lag_seconds",
		"Age of the oldest event the read model has not applied yet (0 when caught up).", []string{"read_model"}, nil)
)

// projectionCollector reads positions at scrape time: the projector's position, the stream's
// head (one STREAM.INFO) and, when behind, the stored time of the first unapplied event (one
// direct get).
type projectionCollector struct {
	src Sources
}

func (c *projectionCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descStreamHead
	ch <- descPosition
	ch <- descLagEvents
	ch <- descLagSeconds
}

func (c *projectionCollector) Collect(ch chan<- prometheus.Metric) {
	pos := c.src.Projector.Position()
	head := c.src.Writer.Head()
	var lagSeconds float64
	if c.src.Stream != nil {
		ctx, cancel := context.WithTimeout(context.Background(), c.src.StreamTimeout)
		defer cancel()
		if h, err := c.src.Stream.Head(ctx); err == nil && h > head {
			head = h
		}
		if pos < head {
			if t, err := c.src.Stream.StoredAt(ctx, pos+1); err == nil {
				lagSeconds = max(0, c.src.Now().Sub(t).Seconds())
			}
		}
	}
	var lag uint64
	if head > pos {
		lag = head - pos
	}
	ch <- prometheus.MustNewConstMetric(descStreamHead, prometheus.GaugeValue, float64(head))
	for _, rm := range c.src.ReadModels {
		ch <- prometheus.MustNewConstMetric(descPosition, prometheus.GaugeValue, float64(pos), rm)
		ch <- prometheus.MustNewConstMetric(descLagEvents, prometheus.GaugeValue, float64(lag), rm)
		ch <- prometheus.MustNewConstMetric(descLagSeconds, prometheus.GaugeValue, lagSeconds, rm)
	}
}
