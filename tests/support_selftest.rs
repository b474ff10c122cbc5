//! The helpers' own tests: rotel's log-line parser (`tests/support/rotel.rs`).
//! Here, in one test binary of their own, instead of in every binary that
//! declares `mod support;`.

mod support;

mod rotel {
    use crate::support::rotel::{parse_line, Counts, Line, Received, Signal};

    // Real output of rotel-agent 0.0.1-alpha10 (PyPI rotel 0.0.1a15), captured
    // with NO_COLOR=1 while scripts/otlp_send.py and hand-made requests ran.
    const STARTED: &str = r#"2026-11-30T01:12:45.688723Z  INFO Starting Rotel. grpc_endpoint="127.0.0.1:14317" http_endpoint="127.0.0.1:14318""#;
    const METRICS_15: &str =
        r#"2026-11-30T01:15:52.786296Z  INFO Received metrics. data_type="metrics" resource_metrics=1 metrics=15"#;
    const TRACES_7: &str =
        r#"2026-11-30T01:15:52.787471Z  INFO Received traces. data_type="traces" resource_spans=1 spans=7"#;
    const LOGS_4: &str = r#"2026-11-30T01:15:52.787852Z  INFO Received logs. data_type="logs" resource_logs=1 logs=4"#;
    // Two resources, each 2 sums of 3 points: `metrics=` counts points.
    const METRICS_TWO_RESOURCES: &str =
        r#"2026-11-30T01:12:46.803629Z  INFO Received metrics. data_type="metrics" resource_metrics=2 metrics=12"#;
    // An empty ExportMetricsServiceRequest still prints a line.
    const METRICS_EMPTY: &str =
        r#"2026-11-30T01:12:46.807714Z  INFO Received metrics. data_type="metrics" resource_metrics=0 metrics=0"#;
    const SHUTDOWN: &str = "2026-11-30T01:12:47.841779Z  INFO Shutdown signal received.";
    const BIND_ERROR: &str = "ERROR: unable to bind to 127.0.0.1:14317: Address already in use (os error 98)";
    // The same metrics line as rotel prints it without NO_COLOR (ANSI colours, even into a pipe).
    const METRICS_15_COLOURED: &str = "\u{1b}[2m2026-11-30T01:12:38.219996Z\u{1b}[0m \u{1b}[32m INFO\u{1b}[0m \
        Received metrics. \u{1b}[3mdata_type\u{1b}[0m\u{1b}[2m=\u{1b}[0m\"metrics\" \
        \u{1b}[3mresource_metrics\u{1b}[0m\u{1b}[2m=\u{1b}[0m1 \u{1b}[3mmetrics\u{1b}[0m\u{1b}[2m=\u{1b}[0m15";

    fn received(signal: Signal, items: u64, resources: u64) -> Line {
        Line::Received(Received { signal, items, resources })
    }

    #[test]
    fn parses_the_per_request_lines_of_each_signal() {
        assert_eq!(parse_line(METRICS_15), received(Signal::Metrics, 15, 1));
        assert_eq!(parse_line(TRACES_7), received(Signal::Traces, 7, 1));
        assert_eq!(parse_line(LOGS_4), received(Signal::Logs, 4, 1));
        assert_eq!(parse_line(METRICS_TWO_RESOURCES), received(Signal::Metrics, 12, 2));
        assert_eq!(parse_line(METRICS_EMPTY), received(Signal::Metrics, 0, 0));
    }

    #[test]
    fn counts_points_not_resource_metrics() {
        // `resource_metrics=` also ends in "metrics=": only the exact key counts.
        let line = r#"INFO Received metrics. data_type="metrics" metrics=3 resource_metrics=9"#;
        assert_eq!(parse_line(line), received(Signal::Metrics, 3, 9));
    }

    #[test]
    fn strips_ansi_colours() {
        assert_eq!(parse_line(METRICS_15_COLOURED), received(Signal::Metrics, 15, 1));
    }

    #[test]
    fn recognises_the_start_up_line() {
        assert_eq!(parse_line(STARTED), Line::Started);
    }

    #[test]
    fn other_lines_count_nothing() {
        assert_eq!(parse_line(SHUTDOWN), Line::Other);
        assert_eq!(parse_line(BIND_ERROR), Line::Other);
        assert_eq!(parse_line(""), Line::Other);
    }

    #[test]
    fn a_request_line_without_a_readable_count_is_malformed() {
        for line in [
            r#"INFO Received metrics. data_type="metrics" resource_metrics=1"#,
            r#"INFO Received traces. data_type="traces" resource_spans=1 spans=seven"#,
            r#"INFO Received logs. data_type="metrics" resource_logs=1 logs=4"#,
        ] {
            assert!(matches!(parse_line(line), Line::Malformed(_)), "{line}");
        }
    }

    #[test]
    fn counts_display_names_every_counter() {
        let counts = Counts { items: [15, 7, 4], requests: [1, 1, 1], malformed: 0 };
        assert_eq!(counts.requests(), 3);
        assert_eq!(
            counts.to_string(),
            "metric points 15 in 1 requests, spans 7 in 1, log records 4 in 1, malformed lines 0"
        );
    }
}

mod dead {
    use super::support::dead::DeadPort;

    #[test]
    fn a_dead_port_refuses_connections_and_no_other_socket_can_take_it() {
        let dead = DeadPort::new();
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], dead.port()));
        let refused = std::net::TcpStream::connect(addr).expect_err("nothing listens there");
        assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused, "{refused}");
        let taken = std::net::TcpListener::bind(addr).expect_err("the port is held");
        assert_eq!(taken.kind(), std::io::ErrorKind::AddrInUse, "{taken}");
        assert_eq!(dead.endpoint(), format!("http://127.0.0.1:{}", dead.port()));
    }
}
