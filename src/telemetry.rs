//! Logging: `tracing` to stderr, as text or JSON lines.

use tracing_subscriber::EnvFilter;

use crate::config::{Config, LogFormat};

/// Installs the global subscriber. `RUST_LOG`, when set, wins over `LOG_LEVEL`.
pub fn init(config: &Config) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .or_else(|| EnvFilter::try_new(&config.log_level).ok())
        .unwrap_or_else(|| EnvFilter::new("info"));
    // Colours only for a terminal: in a file or a log collector the escape codes are noise.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let result = match config.log_format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    // A second init (tests) keeps the first subscriber.
    let _ = result;
}

/// W3C trace context (`traceparent`) of the request being served: the trace it belongs to
/// (the caller's, or one started here), this service's span in it, and the caller's flags.
/// Logged with the request, stored with the events it commits, and sent on with their
/// deliveries, so a receiver's logs join the caller's trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trace {
    /// 32 lowercase hex digits, not all zero.
    pub trace_id: String,
    /// This service's span for the request: 16 lowercase hex digits.
    pub span_id: String,
    /// 2 hex digits (`01`: sampled).
    pub flags: String,
}

impl Trace {
    /// The trace of a request: the caller's `traceparent` when it is a valid version-00 one,
    /// else a new trace; either way with a new span of this service.
    pub fn of_request(traceparent: Option<&str>) -> Trace {
        let span_id = format!("{:016x}", rand::random::<u64>().max(1));
        match traceparent.and_then(parse_traceparent) {
            Some((trace_id, flags)) => Trace {
                trace_id,
                span_id,
                flags,
            },
            None => Trace {
                trace_id: format!("{:032x}", rand::random::<u128>().max(1)),
                span_id,
                flags: "00".into(),
            },
        }
    }

    /// The `traceparent` naming this service's span as the parent.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{}", self.trace_id, self.span_id, self.flags)
    }

    /// The trace of the request this task serves, if any.
    pub fn current() -> Option<Trace> {
        TRACE.try_with(Clone::clone).ok()
    }

    /// Runs `f` as part of this trace.
    pub async fn scope<F: std::future::Future>(self, f: F) -> F::Output {
        TRACE.scope(self, f).await
    }
}

tokio::task_local! {
    static TRACE: Trace;
}

/// The trace id and flags of a version-00 `traceparent`, if it is well formed (W3C Trace
/// Context: `00-<32 hex>-<16 hex>-<2 hex>`, lowercase, ids not all zero).
pub fn parse_traceparent(v: &str) -> Option<(String, String)> {
    let parts: Vec<&str> = v.trim().split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    let zero = |s: &str| s.bytes().all(|b| b == b'0');
    match parts.as_slice() {
        [version, trace, parent, flags]
            if *version == "00"
                && hex(trace, 32)
                && hex(parent, 16)
                && hex(flags, 2)
                && !zero(trace)
                && !zero(parent) =>
        {
            Some((trace.to_string(), flags.to_string()))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_traceparent_is_continued_and_anything_else_starts_a_trace() {
        let given = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let t = Trace::of_request(Some(given));
        assert_eq!(t.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.flags, "01");
        assert_ne!(t.span_id, "00f067aa0ba902b7", "a span of our own");
        assert_eq!(
            parse_traceparent(&t.traceparent()),
            Some((t.trace_id, "01".into()))
        );
        for bad in [
            "",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad}");
            let t = Trace::of_request(Some(bad));
            assert_eq!(t.trace_id.len(), 32);
            assert_eq!(t.flags, "00");
        }
    }
}
