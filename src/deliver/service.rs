//! What every transport needs of a signal's OTLP export service, written
//! once per signal: its gRPC method, its OTLP/HTTP path, its response
//! message and the response's partial success. The encoding (what goes into
//! a request) knows none of it.

use prost::Message;

use crate::config::Signal;
use crate::otlp::{Encoding, Logs, Metrics, Traces};
use crate::pb::collector::logs::v1 as logs;
use crate::pb::collector::metrics::v1 as metrics;
use crate::pb::collector::trace::v1 as trace;

/// One signal's export service.
pub(crate) trait Service: Encoding {
    /// The gRPC method of the `Export` call.
    const GRPC_METHOD: &'static str;
    /// The OTLP/HTTP path, appended to a base endpoint.
    const HTTP_PATH: &'static str;
    /// The export response.
    type Response: Message + Default + Send + 'static;

    /// The response's partial success: how many items the collector refused,
    /// and its message. `(0, "")` when the field is absent.
    fn partial_success(response: &Self::Response) -> (i64, &str);
}

impl Service for Metrics {
    const GRPC_METHOD: &'static str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
    const HTTP_PATH: &'static str = Signal::Metrics.http_path();
    type Response = metrics::ExportMetricsServiceResponse;

    fn partial_success(response: &Self::Response) -> (i64, &str) {
        response.partial_success.as_ref().map_or((0, ""), |p| (p.rejected_data_points, p.error_message.as_str()))
    }
}

impl Service for Traces {
    const GRPC_METHOD: &'static str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
    const HTTP_PATH: &'static str = Signal::Traces.http_path();
    type Response = trace::ExportTraceServiceResponse;

    fn partial_success(response: &Self::Response) -> (i64, &str) {
        response.partial_success.as_ref().map_or((0, ""), |p| (p.rejected_spans, p.error_message.as_str()))
    }
}

impl Service for Logs {
    const GRPC_METHOD: &'static str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";
    const HTTP_PATH: &'static str = Signal::Logs.http_path();
    type Response = logs::ExportLogsServiceResponse;

    fn partial_success(response: &Self::Response) -> (i64, &str) {
        response.partial_success.as_ref().map_or((0, ""), |p| (p.rejected_log_records, p.error_message.as_str()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_success_reads_each_signals_rejected_count() {
        let response = metrics::ExportMetricsServiceResponse {
            partial_success: Some(metrics::ExportMetricsPartialSuccess {
                rejected_data_points: 3,
                error_message: "bad".into(),
            }),
        };
        assert_eq!(Metrics::partial_success(&response), (3, "bad"));
        let response = trace::ExportTraceServiceResponse {
            partial_success: Some(trace::ExportTracePartialSuccess { rejected_spans: 2, error_message: "x".into() }),
        };
        assert_eq!(Traces::partial_success(&response), (2, "x"));
        let response = logs::ExportLogsServiceResponse {
            partial_success: Some(logs::ExportLogsPartialSuccess {
                rejected_log_records: 0,
                error_message: "warning only".into(),
            }),
        };
        assert_eq!(Logs::partial_success(&response), (0, "warning only"));
        assert_eq!(Metrics::partial_success(&Default::default()), (0, ""));
        assert_eq!(Traces::partial_success(&Default::default()), (0, ""));
        assert_eq!(Logs::partial_success(&Default::default()), (0, ""));
    }

    #[test]
    fn http_paths_are_the_specifications() {
        assert_eq!([Metrics::HTTP_PATH, Traces::HTTP_PATH, Logs::HTTP_PATH], ["/v1/metrics", "/v1/traces", "/v1/logs"]);
    }

    #[cfg(feature = "receiver")]
    #[test]
    fn grpc_methods_name_the_generated_services() {
        use crate::pb::collector;
        let methods = [
            (Metrics::GRPC_METHOD, collector::metrics::v1::metrics_service_server::SERVICE_NAME),
            (Traces::GRPC_METHOD, collector::trace::v1::trace_service_server::SERVICE_NAME),
            (Logs::GRPC_METHOD, collector::logs::v1::logs_service_server::SERVICE_NAME),
        ];
        for (method, service) in methods {
            assert_eq!(method, format!("/{service}/Export"));
        }
    }
}
