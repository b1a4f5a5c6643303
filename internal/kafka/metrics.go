package kafka

import (
	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/plugin/kprom"
)

// Metrics is the client option that exports franz-go's client metrics
// (kprom: connections, bytes and records produced and fetched by broker and
// topic, buffered records) as kinoteka_kafka_* series into reg — a
// service's own registry, never Prometheus' global one, so that the three
// services of the embedded mode keep their series apart.
func Metrics(reg *prometheus.Registry) kgo.Opt {
	return kgo.WithHooks(kprom.NewMetrics("kinoteka",
		kprom.Subsystem("kafka"),
		kprom.Registry(reg),
		kprom.FetchAndProduceDetail(kprom.ByNode, kprom.ByTopic, kprom.Records, kprom.UncompressedBytes),
	))
}
