//! `live --metrics`: the live [`Counters`] in the Prometheus text exposition format (version 0.0.4),
//! encoded by the `prometheus-client` crate. The metric names, their labels and the `code` vocabulary are
//! documented in docs/metrics.md; the names the issue fixed (`iceview_packets_total`, ...) are an interface
//! that dashboards and alert rules (contrib/) depend on.
//!
//! Pure: a snapshot of the counters in, the exposition text out. Serving it over HTTP is the binary's job.
use super::counters::{Counters, RTT_BUCKETS};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{prometheus_text, DescriptorEncoder, EncodeMetric, NoLabelSet};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::fmt;

/// The `Content-Type` of [`exposition`].
pub const CONTENT_TYPE: &str = prometheus_text::CONTENT_TYPE;

/// The counters as Prometheus exposition text.
pub fn exposition(counters: &Counters) -> String {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(Snapshot(counters.clone())));
    let mut out = String::new();
    // Writing into a String cannot fail, and every value and label here is ours.
    let _ = prometheus_text::encode(&mut out, &registry);
    out
}

#[derive(Debug)]
struct Snapshot(Counters);

/// A counter family: its descriptor, then one sample per `(labels, value)`.
fn counters<const N: usize>(
    enc: &mut DescriptorEncoder<'_>,
    name: &str,
    help: &str,
    series: impl IntoIterator<Item = ([(&'static str, &'static str); N], u64)>,
) -> fmt::Result {
    let mut m = enc.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, v) in series {
        ConstCounter::new(v).encode(m.encode_family(&labels)?)?;
    }
    Ok(())
}

fn counter(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: u64) -> fmt::Result {
    ConstCounter::new(v).encode(enc.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn gauge(enc: &mut DescriptorEncoder<'_>, name: &str, help: &str, v: i64) -> fmt::Result {
    ConstGauge::new(v).encode(enc.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

impl Collector for Snapshot {
    fn encode(&self, mut enc: DescriptorEncoder<'_>) -> fmt::Result {
        let c = &self.0;
        let e = &mut enc;
        counter(e, "iceview_packets", "Packets captured", c.packets)?;
        counter(
            e,
            "iceview_analysed_packets",
            "Packets the analysis read (captured minus queue drops)",
            c.analysed,
        )?;
        counters(
            e,
            "iceview_dropped_packets",
            "Packets lost before the analysis: by the kernel (raise -B), the interface, or iceview's queue",
            [
                ([("where", "kernel")], c.kernel_dropped),
                ([("where", "interface")], c.interface_dropped),
                ([("where", "queue")], c.queue_dropped),
            ],
        )?;
        counters(
            e,
            "iceview_stun_messages",
            "STUN/TURN messages decoded, relayed ones included, by method and class",
            c.stun_messages
                .iter()
                .map(|(method, class, n)| ([("method", method), ("class", class)], n)),
        )?;
        counters(
            e,
            "iceview_turn_allocations",
            "TURN allocations, counted once when granted or definitely refused",
            [
                ([("outcome", "allocated")], c.allocations_allocated),
                ([("outcome", "failed")], c.allocations_failed),
            ],
        )?;
        counters(
            e,
            "iceview_turn_allocation_errors",
            "Error responses to Allocate by code, except the 401 challenge to a request without credentials",
            c.allocation_errors
                .iter()
                .map(|(&code, &n)| ([("code", code)], n)),
        )?;
        gauge(
            e,
            "iceview_turn_allocations_active",
            "TURN allocations granted and not yet deleted or expired",
            i64::try_from(c.view.allocations_active).unwrap_or(i64::MAX),
        )?;
        counters(
            e,
            "iceview_turn_relayed_bytes",
            "Application bytes relayed through TURN allocations (Send/Data indications, ChannelData)",
            [
                ([("direction", "to_peer")], c.relayed_bytes_to_peer),
                ([("direction", "from_peer")], c.relayed_bytes_from_peer),
            ],
        )?;
        counters(
            e,
            "iceview_ice_sessions",
            "ICE sessions, counted once when connected or failed, or as incomplete when over undecided",
            c.sessions.iter().map(|(&o, &n)| ([("outcome", o)], n)),
        )?;
        let h = &c.check_rtt;
        let mut buckets: Vec<(f64, u64)> = RTT_BUCKETS.iter().copied().zip(h.buckets).collect();
        buckets.push((f64::INFINITY, h.buckets[RTT_BUCKETS.len()]));
        e.encode_descriptor(
            "iceview_ice_check_rtt_seconds",
            "Round-trip time of ICE connectivity and consent checks, from the last transmission to the success response",
            None,
            MetricType::Histogram,
        )?
        .encode_histogram::<NoLabelSet>(h.sum, h.count, &buckets, None)?;
        counters(
            e,
            "iceview_findings",
            "Findings raised, by code and severity (docs/report.md lists the codes)",
            c.findings
                .iter()
                .map(|(&(code, sev), &n)| ([("code", code), ("severity", sev)], n)),
        )?;
        counters(
            e,
            "iceview_not_tracked",
            "ICE sessions and TURN allocations beyond the analysis's table bounds: seen but not analysed",
            [
                ([("what", "ice_session")], c.sessions_not_tracked),
                ([("what", "turn_allocation")], c.allocations_not_tracked),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::analysis::findings::Severity;
    use crate::analysis::sessions::Outcome;
    use crate::wire::stun::{Class, Method};

    /// Expected lines written by hand from the Prometheus text format (exposition_formats.md): a counter's
    /// samples end in `_total`, a histogram's buckets are cumulative and end with `le="+Inf"`.
    #[test]
    fn exposition_of_known_counters() {
        let mut c = Counters {
            packets: 42,
            kernel_dropped: 3,
            allocations_allocated: 2,
            ..Counters::default()
        };
        c.stun_messages.count(Method::ALLOCATE, Class::Error);
        c.allocation_error(401);
        c.allocation_error(999);
        c.session(Outcome::Connected);
        c.session(Outcome::Incomplete);
        c.finding("turn.auth.rejected", Severity::Error);
        c.view.allocations_active = 1;
        c.check_rtt.observe(0.002);
        c.check_rtt.observe(0.2);
        let text = exposition(&c);
        for line in [
            "# TYPE iceview_packets_total counter",
            "iceview_packets_total 42",
            "iceview_dropped_packets_total{where=\"kernel\"} 3",
            "iceview_dropped_packets_total{where=\"queue\"} 0",
            "iceview_stun_messages_total{method=\"allocate\",class=\"error\"} 1",
            "iceview_turn_allocations_total{outcome=\"allocated\"} 2",
            "iceview_turn_allocations_total{outcome=\"failed\"} 0",
            "iceview_turn_allocation_errors_total{code=\"401\"} 1",
            "iceview_turn_allocation_errors_total{code=\"other\"} 1",
            "# TYPE iceview_turn_allocations_active gauge",
            "iceview_turn_allocations_active 1",
            "iceview_ice_sessions_total{outcome=\"connected\"} 1",
            "iceview_ice_sessions_total{outcome=\"incomplete\"} 1",
            "# TYPE iceview_ice_check_rtt_seconds histogram",
            "iceview_ice_check_rtt_seconds_bucket{le=\"0.001\"} 0",
            "iceview_ice_check_rtt_seconds_bucket{le=\"0.0025\"} 1",
            "iceview_ice_check_rtt_seconds_bucket{le=\"0.25\"} 2",
            "iceview_ice_check_rtt_seconds_bucket{le=\"+Inf\"} 2",
            "iceview_ice_check_rtt_seconds_count 2",
            "iceview_findings_total{code=\"turn.auth.rejected\",severity=\"error\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
        }
        assert_eq!(text.matches("le=\"+Inf\"").count(), 1, "{text}");
    }
}
