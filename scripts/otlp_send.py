#!/usr/bin/env python3
"""Send OTLP/gRPC requests with known counts, using the OpenTelemetry project's
own generated classes (opentelemetry-proto + grpcio): a sender that shares no
code with this crate, for checking the test harness and the collector.

Run it with the test venv's interpreter (scripts/install-test-deps.sh):

    target/test-venv/bin/python scripts/otlp_send.py --endpoint 127.0.0.1:4317 \
        --requests 2 --metrics 3 --points-per-metric 5 --spans 7 --logs 4

Each request of each enabled signal carries the same shape. On success it prints
one JSON line with what the collector acknowledged:

    {"requests": 6, "metric_points": 30, "spans": 14, "log_records": 8}

Any RPC failure, or a response with partial_success set, exits 1 with a message
on stderr.
"""

import argparse
import json
import sys

import grpc
from opentelemetry.proto.collector.logs.v1 import logs_service_pb2, logs_service_pb2_grpc
from opentelemetry.proto.collector.metrics.v1 import metrics_service_pb2, metrics_service_pb2_grpc
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.proto.common.v1 import common_pb2
from opentelemetry.proto.logs.v1 import logs_pb2
from opentelemetry.proto.metrics.v1 import metrics_pb2
from opentelemetry.proto.resource.v1 import resource_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

CUMULATIVE = metrics_pb2.AGGREGATION_TEMPORALITY_CUMULATIVE


def attr(key, value):
    if isinstance(value, int):
        return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(int_value=value))
    return common_pb2.KeyValue(key=key, value=common_pb2.AnyValue(string_value=value))


def resource():
    return resource_pb2.Resource(attributes=[attr("service.name", "otlp_send.py")])


def metrics_request(n_metrics, points_per_metric, seq):
    metrics = []
    for m in range(n_metrics):
        points = [
            metrics_pb2.NumberDataPoint(
                attributes=[attr("series", p)], start_time_unix_nano=1, time_unix_nano=2 + seq, as_int=p
            )
            for p in range(points_per_metric)
        ]
        metrics.append(
            metrics_pb2.Metric(
                name=f"otlp_send.counter_{m}",
                sum=metrics_pb2.Sum(data_points=points, aggregation_temporality=CUMULATIVE, is_monotonic=True),
            )
        )
    scope = metrics_pb2.ScopeMetrics(metrics=metrics)
    return metrics_service_pb2.ExportMetricsServiceRequest(
        resource_metrics=[metrics_pb2.ResourceMetrics(resource=resource(), scope_metrics=[scope])]
    )


def trace_request(n_spans, seq):
    trace_id = bytes([seq % 256 + 1]) * 16
    spans = [
        trace_pb2.Span(
            trace_id=trace_id,
            span_id=(s + 1).to_bytes(8, "big"),
            name=f"otlp_send.span_{s}",
            kind=trace_pb2.Span.SPAN_KIND_INTERNAL,
            start_time_unix_nano=1,
            end_time_unix_nano=2,
        )
        for s in range(n_spans)
    ]
    scope = trace_pb2.ScopeSpans(spans=spans)
    return trace_service_pb2.ExportTraceServiceRequest(
        resource_spans=[trace_pb2.ResourceSpans(resource=resource(), scope_spans=[scope])]
    )


def logs_request(n_logs, seq):
    records = [
        logs_pb2.LogRecord(
            time_unix_nano=1,
            severity_number=logs_pb2.SEVERITY_NUMBER_INFO,
            body=common_pb2.AnyValue(string_value=f"otlp_send log {seq}.{i}"),
        )
        for i in range(n_logs)
    ]
    scope = logs_pb2.ScopeLogs(log_records=records)
    return logs_service_pb2.ExportLogsServiceRequest(
        resource_logs=[logs_pb2.ResourceLogs(resource=resource(), scope_logs=[scope])]
    )


def check_partial_success(signal, response):
    if response.HasField("partial_success"):
        sys.exit(f"otlp_send.py: {signal} response has partial_success: {response.partial_success}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--endpoint", required=True, help="host:port of the OTLP/gRPC receiver (plaintext)")
    parser.add_argument("--requests", type=int, default=1, help="requests per enabled signal")
    parser.add_argument("--metrics", type=int, default=0, help="metrics per metrics request (0: send none)")
    parser.add_argument("--points-per-metric", type=int, default=1)
    parser.add_argument("--spans", type=int, default=0, help="spans per trace request (0: send none)")
    parser.add_argument("--logs", type=int, default=0, help="log records per logs request (0: send none)")
    parser.add_argument("--gzip", action="store_true", help="gzip-compress the requests")
    parser.add_argument("--timeout", type=float, default=10.0, help="per-request deadline in seconds")
    args = parser.parse_args()

    compression = grpc.Compression.Gzip if args.gzip else grpc.Compression.NoCompression
    sent = {"requests": 0, "metric_points": 0, "spans": 0, "log_records": 0}
    with grpc.insecure_channel(args.endpoint) as channel:
        # Fail fast with a clear message if nothing listens there.
        try:
            grpc.channel_ready_future(channel).result(timeout=args.timeout)
        except grpc.FutureTimeoutError:
            sys.exit(f"otlp_send.py: no gRPC server at {args.endpoint} within {args.timeout}s")
        metrics = metrics_service_pb2_grpc.MetricsServiceStub(channel)
        traces = trace_service_pb2_grpc.TraceServiceStub(channel)
        logs = logs_service_pb2_grpc.LogsServiceStub(channel)
        try:
            for seq in range(args.requests):
                if args.metrics:
                    req = metrics_request(args.metrics, args.points_per_metric, seq)
                    check_partial_success("metrics", metrics.Export(req, timeout=args.timeout, compression=compression))
                    sent["requests"] += 1
                    sent["metric_points"] += args.metrics * args.points_per_metric
                if args.spans:
                    req = trace_request(args.spans, seq)
                    check_partial_success("traces", traces.Export(req, timeout=args.timeout, compression=compression))
                    sent["requests"] += 1
                    sent["spans"] += args.spans
                if args.logs:
                    req = logs_request(args.logs, seq)
                    check_partial_success("logs", logs.Export(req, timeout=args.timeout, compression=compression))
                    sent["requests"] += 1
                    sent["log_records"] += args.logs
        except grpc.RpcError as e:
            sys.exit(f"otlp_send.py: export failed after {sent}: {e.code()} {e.details()!r}")
    print(json.dumps(sent))


if __name__ == "__main__":
    main()
