//! Bad input: each case is delivered intact, or refused with a clear error
//! and counted as rejected, and never costs a panic or a neighbour.
//!
//! What arrived is read back from the in-process receiver's recording and
//! decoded here with hand-written prost messages (the OTLP field numbers,
//! nothing from this crate's encoder), so "intact" means what the collector
//! decoded. One test sends the same odd points to rotel, a real collector,
//! and compares its count.

#![cfg(feature = "receiver")]

mod support;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use otlp_sink::receiver::Receiver;
use otlp_sink::{
    config::{EnvSettings, ExporterConfigErrorKind, RetryPolicy, ValueOrigin},
    otlp::{AnyValue, HistogramValue, KeyValue, MetricDescriptor, MetricKind, MetricPoint, MetricValue, Temporality},
    sink::DrainErrorKind,
    tls::ConnectError,
    ExporterConfig, MetricsDrain, Signal, SinkConfig,
};
use prost::Message;
use support::accounting::{failure, Pipeline};
use support::points::Shared;

/// The OTLP metrics messages, only the fields these tests read. Field numbers
/// from opentelemetry-proto `metrics/v1/metrics.proto` and `common/v1/common.proto`;
/// a `oneof` member is read as an optional field of the same number.
mod wire {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ExportMetricsServiceRequest {
        #[prost(message, repeated, tag = "1")]
        pub resource_metrics: Vec<ResourceMetrics>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ResourceMetrics {
        #[prost(message, repeated, tag = "2")]
        pub scope_metrics: Vec<ScopeMetrics>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct ScopeMetrics {
        #[prost(message, repeated, tag = "2")]
        pub metrics: Vec<Metric>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Metric {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(message, optional, tag = "5")]
        pub gauge: Option<Points>,
        #[prost(message, optional, tag = "7")]
        pub sum: Option<Points>,
        #[prost(message, optional, tag = "9")]
        pub histogram: Option<Histogram>,
    }
    /// `Gauge` and `Sum`: their data points are field 1 of both.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Points {
        #[prost(message, repeated, tag = "1")]
        pub data_points: Vec<NumberDataPoint>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct NumberDataPoint {
        #[prost(message, repeated, tag = "7")]
        pub attributes: Vec<KeyValue>,
        #[prost(double, optional, tag = "4")]
        pub as_double: Option<f64>,
        #[prost(sfixed64, optional, tag = "6")]
        pub as_int: Option<i64>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Histogram {
        #[prost(message, repeated, tag = "1")]
        pub data_points: Vec<HistogramDataPoint>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct HistogramDataPoint {
        #[prost(fixed64, tag = "4")]
        pub count: u64,
        #[prost(double, optional, tag = "5")]
        pub sum: Option<f64>,
        #[prost(fixed64, repeated, tag = "6")]
        pub bucket_counts: Vec<u64>,
        #[prost(double, repeated, tag = "7")]
        pub explicit_bounds: Vec<f64>,
        #[prost(double, optional, tag = "11")]
        pub min: Option<f64>,
        #[prost(double, optional, tag = "12")]
        pub max: Option<f64>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct KeyValue {
        #[prost(string, tag = "1")]
        pub key: String,
        #[prost(message, optional, tag = "2")]
        pub value: Option<AnyValue>,
    }
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct AnyValue {
        #[prost(string, optional, tag = "1")]
        pub string_value: Option<String>,
        #[prost(int64, optional, tag = "3")]
        pub int_value: Option<i64>,
        #[prost(double, optional, tag = "4")]
        pub double_value: Option<f64>,
    }
}

/// Every metric the receiver decoded, in arrival order.
fn metrics_received(receiver: &Receiver) -> Vec<wire::Metric> {
    let requests = receiver.recorded(Signal::Metrics);
    assert!(!requests.is_empty(), "nothing was recorded: was the receiver built with_recording()?");
    requests
        .iter()
        .map(|bytes| wire::ExportMetricsServiceRequest::decode(bytes.as_slice()).expect("a valid OTLP request"))
        .flat_map(|request| request.resource_metrics)
        .flat_map(|r| r.scope_metrics)
        .flat_map(|s| s.metrics)
        .collect()
}

/// The number points of every sum or gauge received, by metric name.
fn number_points(receiver: &Receiver) -> HashMap<String, Vec<wire::NumberDataPoint>> {
    let mut by_name: HashMap<String, Vec<wire::NumberDataPoint>> = HashMap::new();
    for metric in metrics_received(receiver) {
        let points = metric.gauge.or(metric.sum).map(|p| p.data_points).unwrap_or_default();
        by_name.entry(metric.name).or_default().extend(points);
    }
    by_name
}

fn gauge(name: impl Into<String>) -> Arc<MetricDescriptor> {
    Arc::new(MetricDescriptor::new(name, MetricKind::Gauge))
}

fn point(shared: &Shared, descriptor: &Arc<MetricDescriptor>, value: MetricValue) -> MetricPoint {
    MetricPoint::new(shared.resource.clone(), shared.scope.clone(), descriptor.clone(), value).with_time(1, 2)
}

async fn receiver() -> Receiver {
    Receiver::builder().with_recording().start().await.expect("receiver")
}

fn config(receiver: &Receiver) -> otlp_sink::config::ExporterConfigBuilder {
    let retry =
        RetryPolicy::new().with_initial_delay(Duration::from_millis(20)).with_max_elapsed(Duration::from_secs(3));
    ExporterConfig::builder().with_endpoint(receiver.endpoint()).with_retry_policy(retry)
}

fn sink_config() -> SinkConfig {
    SinkConfig::default().with_queue_capacity(10_000).with_batch_size(1_000)
}

/// OTLP carries doubles as IEEE 754, NaN and infinities included: they are
/// data (a gauge that went NaN says something), delivered bit for bit in
/// values, histogram sums and bounds, and attributes.
#[tokio::test]
async fn nan_and_infinities_are_delivered_bit_for_bit() {
    let receiver = receiver().await;
    let p = Pipeline::start(config(&receiver), sink_config()).await;
    let shared = Shared::new();
    let odd = [f64::NAN, -f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.0, f64::MIN_POSITIVE / 2.0, f64::MAX];
    let values = gauge("odd.values");
    let mut points: Vec<MetricPoint> = (odd.iter())
        .enumerate()
        .map(|(i, &v)| point(&shared, &values, MetricValue::Double(v)).with_attributes([KeyValue::new("i", i as i64)]))
        .collect();
    points.push(
        point(&shared, &gauge("odd.attributes"), MetricValue::Int(1))
            .with_attributes([KeyValue::new("nan", f64::NAN), KeyValue::new("inf", f64::INFINITY)]),
    );
    let histogram =
        Arc::new(MetricDescriptor::new("odd.histogram", MetricKind::Histogram { temporality: Temporality::Delta }));
    points.push(point(
        &shared,
        &histogram,
        MetricValue::Histogram(HistogramValue {
            count: 3,
            sum: Some(f64::NAN),
            bucket_counts: vec![1, 1, 1],
            explicit_bounds: vec![f64::NEG_INFINITY, f64::INFINITY],
            min: Some(f64::NEG_INFINITY),
            max: Some(f64::INFINITY),
        }),
    ));
    let pushed = points.len() as u64;
    assert_eq!(p.offer(points), 0);

    p.sink.flush().await.expect("odd doubles are valid OTLP");
    assert_eq!(receiver.counts().metrics.acked, pushed);

    let received = number_points(&receiver);
    let bits: Vec<u64> = received["odd.values"].iter().map(|p| p.as_double.expect("a double").to_bits()).collect();
    assert_eq!(bits, odd.map(f64::to_bits), "each value bit for bit, NaN payload and sign included");
    let attributes = &received["odd.attributes"][0].attributes;
    let attribute =
        |key: &str| attributes.iter().find(|kv| kv.key == key).and_then(|kv| kv.value.clone()?.double_value);
    assert!(attribute("nan").is_some_and(f64::is_nan));
    assert_eq!(attribute("inf"), Some(f64::INFINITY));
    let histograms: Vec<wire::HistogramDataPoint> =
        metrics_received(&receiver).into_iter().filter_map(|m| m.histogram).flat_map(|h| h.data_points).collect();
    let h = &histograms[0];
    assert!(h.sum.is_some_and(f64::is_nan));
    assert_eq!((h.min, h.max), (Some(f64::NEG_INFINITY), Some(f64::INFINITY)));
    assert_eq!(h.explicit_bounds, [f64::NEG_INFINITY, f64::INFINITY]);

    let (result, books) = p.shutdown().await;
    result.expect("clean shutdown");
    books.assert_balanced("nan and infinities");
    assert_eq!(books.export.acked, pushed);
}

/// An empty name and a 100 000-byte name are not this exporter's to judge:
/// OTLP carries them, and the collector decides. A name so long that its
/// metric cannot fit any request is the exporter's problem: a counted
/// `TooLarge` rejection, its neighbours delivered.
#[tokio::test]
async fn empty_and_very_long_metric_names_arrive_intact_and_one_too_long_for_any_request_is_rejected() {
    let receiver = receiver().await;
    let limit = 256 * 1024;
    let p = Pipeline::start(config(&receiver).with_max_request_bytes(limit), sink_config()).await;
    let shared = Shared::new();
    let long = "n".repeat(100_000);
    let huge = "h".repeat(limit + 1);
    let points = vec![
        point(&shared, &gauge(""), MetricValue::Int(1)),
        point(&shared, &gauge(long.clone()), MetricValue::Int(2)),
        point(&shared, &gauge(huge), MetricValue::Int(3)),
        point(&shared, &gauge("neighbour"), MetricValue::Int(4)),
    ];
    assert_eq!(p.offer(points), 0);

    let f = failure(&p.sink.flush().await.expect_err("the huge name cannot be sent"));
    assert_eq!((f.kind, f.items, f.code), (DrainErrorKind::TooLarge, Some(1), None));
    assert!(f.chain.contains(&format!("more than the {limit}-byte request limit")), "{}", f.chain);

    let received = number_points(&receiver);
    assert_eq!(received[""][0].as_int, Some(1));
    assert_eq!(received[&long][0].as_int, Some(2));
    assert_eq!(received["neighbour"][0].as_int, Some(4));
    assert_eq!(
        received.len(),
        3,
        "the huge name was not sent: {:?}",
        received.keys().map(String::len).collect::<Vec<_>>()
    );

    let (result, books) = p.shutdown().await;
    result.expect("the rejection was reported by the flush, once");
    books.assert_balanced("metric names");
    assert_eq!((books.export.acked, books.export.rejected), (3, 1));
    assert_eq!(receiver.counts().metrics.acked, 3);
}

/// 10 000 attributes on one point make a request of a few hundred KB: it is
/// delivered whole, every key and value in place, next to ordinary points.
#[tokio::test]
async fn ten_thousand_attributes_on_one_point_arrive_whole() {
    let receiver = receiver().await;
    let p = Pipeline::start(config(&receiver), sink_config()).await;
    let shared = Shared::new();
    let wide = point(&shared, &gauge("wide"), MetricValue::Int(7))
        .with_attributes((0..10_000).map(|i| KeyValue::new(format!("attribute.{i}"), i as i64)));
    let mut points = shared.counters(1, 10);
    points.insert(5, wide);
    assert_eq!(p.offer(points), 0);

    p.sink.flush().await.expect("delivered");
    let received = number_points(&receiver);
    let attributes = &received["wide"][0].attributes;
    assert_eq!(attributes.len(), 10_000);
    for (i, kv) in attributes.iter().enumerate() {
        assert_eq!(
            (kv.key.as_str(), kv.value.as_ref().and_then(|v| v.int_value)),
            (&*format!("attribute.{i}"), Some(i as i64))
        );
    }
    assert_eq!(received["requests_0"].len(), 10, "the neighbours arrived");

    let (result, books) = p.shutdown().await;
    result.expect("clean shutdown");
    books.assert_balanced("10 000 attributes");
    assert_eq!(books.export.acked, 11);
}

/// A 5 MB attribute value makes a point larger than the default 4 MiB
/// request limit (the collector's receive limit): it is refused here with
/// `TooLarge`, counted as rejected, and the points around it arrive.
#[tokio::test]
async fn a_five_megabyte_attribute_is_a_counted_rejection_and_its_neighbours_arrive() {
    let receiver = receiver().await;
    let p = Pipeline::start(config(&receiver), sink_config()).await;
    let mut points = Shared::new().counters(1, 100);
    points[40].attributes.push(KeyValue::new("blob", "x".repeat(5_000_000)));
    assert_eq!(p.offer(points), 0);

    let f = failure(&p.sink.flush().await.expect_err("a 5 MB point cannot be sent"));
    assert_eq!((f.kind, f.items, f.code), (DrainErrorKind::TooLarge, Some(1), None));
    assert!(f.chain.contains("more than the 4194304-byte request limit"), "{}", f.chain);
    let received = number_points(&receiver);
    assert_eq!(received["requests_0"].len(), 99);
    assert!(receiver.counts().metrics.bytes < 100_000, "the blob never travelled: {:?}", receiver.counts().metrics);

    let (result, books) = p.shutdown().await;
    result.expect("reported once, by the flush");
    books.assert_balanced("5 MB attribute");
    assert_eq!((books.export.acked, books.export.rejected), (99, 1));
}

/// Keys, values and metric names in any script arrive byte for byte.
#[tokio::test]
async fn non_ascii_keys_values_and_names_arrive_intact() {
    let receiver = receiver().await;
    let p = Pipeline::start(config(&receiver), sink_config()).await;
    let shared = Shared::new();
    let pairs = [
        ("température", "°C"),
        ("日本語のキー", "値"),
        ("ключ", "значение"),
        ("مفتاح", "قيمة"),
        ("emoji 🚀✨", "👩‍💻"),
        ("e\u{301}", "combining accent"),
        ("zero\u{200b}width", "tab\there"),
        ("", "empty key"),
    ];
    let name = "métrique.größe.大小";
    let points = vec![point(&shared, &gauge(name), MetricValue::Int(1))
        .with_attributes(pairs.iter().map(|&(k, v)| KeyValue::new(k, v)))];
    assert_eq!(p.offer(points), 0);

    p.sink.flush().await.expect("delivered");
    let received = number_points(&receiver);
    let got: Vec<(String, String)> = received[name][0]
        .attributes
        .iter()
        .map(|kv| (kv.key.clone(), kv.value.clone().and_then(|v| v.string_value).unwrap_or_default()))
        .collect();
    let want: Vec<(String, String)> = pairs.iter().map(|&(k, v)| (k.to_owned(), v.to_owned())).collect();
    assert_eq!(got, want);

    let (result, books) = p.shutdown().await;
    result.expect("clean shutdown");
    books.assert_balanced("non-ASCII");
}

/// A histogram whose bucket counts do not fit its bounds is refused before it
/// leaves (OTLP requires one more count than bounds): a clear error naming
/// the metric and both lengths, a counted rejection, the neighbours sent.
#[tokio::test]
async fn a_histogram_whose_counts_do_not_fit_its_bounds_is_a_counted_rejection_with_a_clear_error() {
    let receiver = receiver().await;
    let p = Pipeline::start(config(&receiver), sink_config()).await;
    let shared = Shared::new();
    let latency = Arc::new(MetricDescriptor::new("latency", MetricKind::Histogram { temporality: Temporality::Delta }));
    let histogram = |counts: Vec<u64>| {
        let value = HistogramValue {
            count: counts.iter().sum(),
            bucket_counts: counts,
            explicit_bounds: vec![5.0, 10.0, 25.0],
            ..HistogramValue::default()
        };
        point(&shared, &latency, MetricValue::Histogram(value))
    };
    let points = vec![histogram(vec![1, 2, 3, 4]), histogram(vec![1, 2, 3]), histogram(vec![0, 0, 0, 9])];
    assert_eq!(p.offer(points), 0);

    let f = failure(&p.sink.flush().await.expect_err("a malformed histogram"));
    assert_eq!((f.kind, f.items, f.code), (DrainErrorKind::Invalid, Some(1), None));
    assert!(
        f.chain.contains("histogram `latency` has a point with 3 bucket counts for 3 explicit bounds"),
        "{}",
        f.chain
    );
    let received: Vec<Vec<u64>> = (metrics_received(&receiver).into_iter())
        .filter_map(|m| m.histogram)
        .flat_map(|h| h.data_points)
        .map(|p| p.bucket_counts)
        .collect();
    assert_eq!(received, [vec![1, 2, 3, 4], vec![0, 0, 0, 9]]);

    let (result, books) = p.shutdown().await;
    result.expect("reported once, by the flush");
    books.assert_balanced("bucket mismatch");
    assert_eq!((books.export.acked, books.export.rejected), (2, 1));
}

/// Bad values in the environment, each reported by the public API with the
/// variable's name and the value (a header's value excepted: it may be a
/// token, so its position and the variable are named instead). A
/// certificate path is a path until it is read: `validate` and `connect`
/// report the file that cannot be read under the variable that named it.
#[tokio::test]
async fn invalid_environment_values_are_reported_with_the_variable_and_the_value() {
    let cases = [
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317", ExporterConfigErrorKind::UnsupportedScheme),
        ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://collector:70000", ExporterConfigErrorKind::InvalidPort),
        ("OTEL_EXPORTER_OTLP_TIMEOUT", "10s", ExporterConfigErrorKind::InvalidMilliseconds),
        ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "0", ExporterConfigErrorKind::Zero),
        ("OTEL_EXPORTER_OTLP_COMPRESSION", "brotli", ExporterConfigErrorKind::UnknownCompression),
        ("OTEL_EXPORTER_OTLP_INSECURE", "maybe", ExporterConfigErrorKind::InvalidBool),
    ];
    for (variable, value, kind) in cases {
        let err = EnvSettings::from_lookup(Signal::Metrics, |name| (name == variable).then(|| value.to_owned()))
            .expect_err(variable);
        assert_eq!((err.variable(), err.value(), err.kind()), (Some(variable), Some(value), kind));
        let message = err.to_string();
        assert!(message.contains(variable) && message.contains(value), "{message}");
    }

    // A header entry that is not name=value, holding a token.
    let variable = "OTEL_EXPORTER_OTLP_HEADERS";
    let err = EnvSettings::from_lookup(Signal::Metrics, |name| {
        (name == variable).then(|| "x-tenant=acme,authorization Bearer s3cr3t-t0ken".to_owned())
    })
    .expect_err("a malformed header");
    assert_eq!((err.variable(), err.kind()), (Some(variable), ExporterConfigErrorKind::MalformedHeader));
    let message = err.to_string();
    assert!(message.contains(variable) && message.contains("entry 2"), "{message}");
    assert!(!format!("{message} {err:?}").contains("s3cr3t-t0ken"), "{message}");

    // A certificate file that does not exist.
    let variable = "OTEL_EXPORTER_OTLP_CERTIFICATE";
    let missing = std::env::temp_dir().join(format!("otlp-sink-no-such-ca-{}.pem", std::process::id()));
    let path = missing.to_str().unwrap().to_owned();
    let env = EnvSettings::from_lookup(Signal::Metrics, |name| match name {
        "OTEL_EXPORTER_OTLP_ENDPOINT" => Some("https://localhost:1".to_owned()),
        n if n == variable => Some(path.clone()),
        _ => None,
    })
    .expect("a path is not checked when parsed");
    let config = ExporterConfig::builder().build_with_env(env).expect("nor when built");
    let err = config.validate().expect_err("validate reads it");
    assert_eq!(
        (err.variable(), err.value(), err.kind()),
        (Some(variable), Some(path.as_str()), ExporterConfigErrorKind::UnreadableFile)
    );
    assert!(err.to_string().contains(variable) && err.to_string().contains(&path), "{err}");
    let err = MetricsDrain::connect(&config).await.expect_err("connect reads it too");
    let message = err.to_string();
    let ConnectError::ReadFile { origin, source, .. } = err else { panic!("expected ReadFile, got {err:?}") };
    assert_eq!((origin, source.kind()), (ValueOrigin::Env(variable), std::io::ErrorKind::NotFound));
    assert!(message.contains(variable) && message.contains(&path), "{message}");
}

/// The same odd but valid points, sent to rotel: a real collector takes all
/// of them (its count equals the drain's acked), and the two points this
/// exporter refuses (5 MB, bucket mismatch) never reach it.
#[tokio::test]
async fn a_real_collector_counts_every_odd_but_valid_point() {
    let rotel = support::rotel::Rotel::start();
    let retry =
        RetryPolicy::new().with_initial_delay(Duration::from_millis(50)).with_max_elapsed(Duration::from_secs(5));
    let config = ExporterConfig::builder().with_endpoint(rotel.endpoint()).with_retry_policy(retry);
    let p = Pipeline::start(config, sink_config()).await;
    let shared = Shared::new();
    let latency = Arc::new(MetricDescriptor::new("latency", MetricKind::Histogram { temporality: Temporality::Delta }));
    let mut points = vec![
        point(&shared, &gauge("nan"), MetricValue::Double(f64::NAN)),
        point(&shared, &gauge("inf"), MetricValue::Double(f64::INFINITY)),
        point(&shared, &gauge("-inf"), MetricValue::Double(f64::NEG_INFINITY)),
        point(&shared, &gauge(""), MetricValue::Int(1)),
        point(&shared, &gauge("n".repeat(100_000)), MetricValue::Int(1)),
        point(&shared, &gauge("wide"), MetricValue::Int(1))
            .with_attributes((0..10_000).map(|i| KeyValue::new(format!("a{i}"), i as i64))),
        point(&shared, &gauge("日本語.métrique"), MetricValue::Int(1))
            .with_attributes([KeyValue::new("ключ", "значение"), KeyValue::new("🚀", AnyValue::Double(f64::NAN))]),
        // Refused here: never sent.
        point(&shared, &gauge("blob"), MetricValue::Int(1))
            .with_attributes([KeyValue::new("blob", "x".repeat(5_000_000))]),
        point(
            &shared,
            &latency,
            MetricValue::Histogram(HistogramValue {
                count: 1,
                bucket_counts: vec![1],
                explicit_bounds: vec![1.0],
                ..HistogramValue::default()
            }),
        ),
    ];
    points.extend(shared.counters(2, 50));
    assert_eq!(p.offer(points), 0);

    let f = failure(&p.sink.flush().await.expect_err("two points are refused here"));
    assert_eq!((f.kind, f.items), (DrainErrorKind::Invalid, Some(1)), "{}", f.chain);
    let (result, books) = p.shutdown().await;
    result.expect("reported by the flush");
    books.assert_balanced("rotel, odd points");
    assert_eq!((books.export.acked, books.export.rejected, books.export.failed), (107, 2, 0));
    let counts = rotel
        .wait_until(Duration::from_secs(30), |c| {
            c.requests_of(support::rotel::Signal::Metrics) >= books.export.requests
        })
        .expect("rotel logged every request");
    assert_eq!(counts.items(support::rotel::Signal::Metrics), 107, "rotel counted {counts}");
    assert_eq!(counts.malformed, 0);
}
