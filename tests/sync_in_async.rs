//! A drain runs on the sink's async actor: blocking calls there stall every
//! task on that runtime worker. This test reads every `impl SinkDrain` under
//! `src/` and fails, naming file and line, when its code calls blocking file,
//! socket, stdout-write or sleep APIs. Use async I/O or `spawn_blocking`.

use std::fmt;
use std::path::{Path, PathBuf};

/// Blocking APIs a drain must not call, each with why.
const FORBIDDEN: &[(&str, &str)] = &[
    ("std::fs", "blocking file I/O; use tokio::fs or spawn_blocking"),
    ("std::io::Write", "blocking writes; use tokio::io::AsyncWrite"),
    ("io::Write", "blocking writes; use tokio::io::AsyncWrite"),
    ("std::io::stdout", "blocking stdout writes"),
    ("std::io::stderr", "blocking stderr writes"),
    ("std::thread::sleep", "blocks the worker thread; use tokio::time::sleep"),
    ("thread::sleep", "blocks the worker thread; use tokio::time::sleep"),
    ("std::net", "blocking sockets; use tokio::net"),
    ("block_on(", "blocks the worker thread on a future"),
    ("blocking_recv(", "blocks the worker thread on a channel"),
    ("blocking_send(", "blocks the worker thread on a channel"),
    ("blocking_lock(", "blocks the worker thread on a lock"),
];

#[derive(Debug, PartialEq)]
struct Violation {
    file: PathBuf,
    /// Byte offset in the file.
    at: usize,
    line: usize,
    pattern: &'static str,
    why: &'static str,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}: `{}` inside an impl SinkDrain: {}", self.file.display(), self.line, self.pattern, self.why)
    }
}

/// Replaces comments and the contents of string and char literals with
/// spaces, keeping every newline, so offsets and line numbers still match.
fn code_only(src: &str) -> String {
    let b = src.as_bytes();
    let mut out = b.to_vec();
    let blank = |out: &mut Vec<u8>, from: usize, to: usize| {
        for c in &mut out[from..to] {
            if *c != b'\n' {
                *c = b' ';
            }
        }
    };
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'/' if b.get(i + 1) == Some(&b'/') => {
                let end = b[i..].iter().position(|&c| c == b'\n').map_or(b.len(), |p| i + p);
                blank(&mut out, i, end);
                i = end;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                let (mut depth, mut j) = (1, i + 2);
                while j < b.len() && depth > 0 {
                    if b[j..].starts_with(b"/*") {
                        depth += 1;
                        j += 2;
                    } else if b[j..].starts_with(b"*/") {
                        depth -= 1;
                        j += 2;
                    } else {
                        j += 1;
                    }
                }
                blank(&mut out, i, j);
                i = j;
            }
            b'r' if (b.get(i + 1) == Some(&b'"') || b.get(i + 1) == Some(&b'#'))
                && (i == 0 || !(b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'_')) =>
            {
                let hashes = b[i + 1..].iter().take_while(|&&c| c == b'#').count();
                if b.get(i + 1 + hashes) != Some(&b'"') {
                    i += 1;
                    continue;
                }
                let closing: Vec<u8> = std::iter::once(b'"').chain(std::iter::repeat_n(b'#', hashes)).collect();
                let start = i + 2 + hashes;
                let end = b[start..].windows(closing.len()).position(|w| w == closing).map_or(b.len(), |p| start + p);
                blank(&mut out, start, end);
                i = end + closing.len();
            }
            b'"' => {
                let mut j = i + 1;
                while j < b.len() && b[j] != b'"' {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                blank(&mut out, i + 1, j.min(b.len()));
                i = j + 1;
            }
            b'\'' => {
                // A char literal ('x', '\n', '\u{1F600}') or a lifetime ('a).
                let end = if b.get(i + 1) == Some(&b'\\') {
                    b[i + 2..].iter().position(|&c| c == b'\'').map(|p| i + 2 + p)
                } else {
                    let ch_len = src[i + 1..].chars().next().map_or(1, char::len_utf8);
                    (b.get(i + 1 + ch_len) == Some(&b'\'')).then_some(i + 1 + ch_len)
                };
                match end {
                    Some(end) => {
                        blank(&mut out, i + 1, end);
                        i = end + 1;
                    }
                    None => i += 1,
                }
            }
            _ => i += 1,
        }
    }
    String::from_utf8(out).expect("only ASCII bytes were replaced")
}

/// The byte ranges of the bodies of every `impl ... SinkDrain ... { }` block.
fn drain_impls(code: &str) -> Vec<std::ops::Range<usize>> {
    let b = code.as_bytes();
    let mut ranges = Vec::new();
    let mut from = 0;
    while let Some(pos) = code[from..].find("impl").map(|p| from + p) {
        from = pos + 4;
        let word_start = pos == 0 || !(b[pos - 1].is_ascii_alphanumeric() || b[pos - 1] == b'_');
        let word_end = b.get(pos + 4).is_some_and(|c| !(c.is_ascii_alphanumeric() || *c == b'_'));
        if !(word_start && word_end) {
            continue;
        }
        let Some(open) = code[pos..].find(['{', ';']).map(|p| pos + p) else { break };
        if b[open] != b'{' || !implements_sink_drain(&code[pos + 4..open]) {
            continue;
        }
        let mut depth = 0usize;
        let mut close = b.len();
        for (j, &c) in b.iter().enumerate().skip(open) {
            match c {
                b'{' => depth += 1,
                b'}' => {
                    depth -= 1;
                    if depth == 0 {
                        close = j + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        ranges.push(pos..close);
        from = close;
    }
    ranges
}

/// Whether an impl header (between `impl` and `{`) is `impl<..> ..SinkDrain<..> for ..`,
/// as opposed to an inherent impl that merely has a `SinkDrain` bound.
fn implements_sink_drain(header: &str) -> bool {
    let mut rest = header.trim_start();
    if rest.starts_with('<') {
        let mut depth = 0usize;
        let Some(end) = rest.char_indices().find_map(|(i, c)| {
            match c {
                '<' => depth += 1,
                '>' => depth -= 1,
                _ => {}
            }
            (depth == 0).then_some(i)
        }) else {
            return false;
        };
        rest = &rest[end + 1..];
    }
    let words: Vec<&str> = rest.split_whitespace().collect();
    words.iter().position(|w| *w == "for").is_some_and(|i| words[..i].iter().any(|w| w.contains("SinkDrain")))
}

fn violations_in(file: &Path, src: &str) -> (usize, Vec<Violation>) {
    let code = code_only(src);
    let impls = drain_impls(&code);
    let mut found = Vec::new();
    for range in &impls {
        let body = &code[range.clone()];
        for &(pattern, why) in FORBIDDEN {
            let mut from = 0;
            while let Some(p) = body[from..].find(pattern) {
                let at = range.start + from + p;
                from += p + pattern.len();
                // `std::io::Write` also contains `io::Write`: report each place once.
                let inside_longer =
                    |v: &Violation| v.pattern.contains(pattern) && (v.at..v.at + v.pattern.len()).contains(&at);
                if !found.iter().any(inside_longer) {
                    found.push(Violation { file: file.to_owned(), at, line: line_of(&code, at), pattern, why });
                }
            }
        }
    }
    found.sort_by_key(|v| v.at);
    (impls.len(), found)
}

fn line_of(code: &str, at: usize) -> usize {
    code[..at].bytes().filter(|&c| c == b'\n').count() + 1
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

#[test]
fn no_drain_under_src_calls_blocking_apis() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    rust_files(&root.join("src"), &mut files);
    assert!(!files.is_empty(), "no sources found under src/");
    let mut impls = 0;
    let mut all = Vec::new();
    let mut spooled = 0;
    for file in files {
        let src = std::fs::read_to_string(&file).unwrap();
        let (n, found) = violations_in(file.strip_prefix(root).unwrap(), &src);
        if file.ends_with("src/drains/spooled.rs") {
            spooled = n;
        }
        impls += n;
        all.extend(found);
    }
    // The spooled drain does file I/O: its impl must be seen, so that the
    // check covers it (its spool calls run on the blocking pool).
    assert!(spooled >= 1, "the spooled drain's impl SinkDrain in src/drains/spooled.rs was not found");
    println!("checked {impls} impl SinkDrain block(s) under src/");
    // The gRPC engine and the macro that declares the per-signal drains: if
    // fewer are found, the scanner has stopped seeing them and checks nothing.
    assert!(impls >= 2, "found only {impls} impl SinkDrain blocks under src/; the scanner is blind");
    let report: Vec<String> = all.iter().map(ToString::to_string).collect();
    assert!(all.is_empty(), "blocking calls in drains:\n{}", report.join("\n"));
}

const PLANTED: &str = r#"
use otlp_sink::{sink::DrainError, SinkDrain};
// std::thread::sleep in a comment is fine
fn helper() { std::thread::sleep(std::time::Duration::from_millis(1)); }
struct D;
impl SinkDrain<u64> for D {
    async fn write_batch(&mut self, batch: Vec<u64>) -> Result<(), DrainError> {
        let s = "std::fs::write in a string is fine";
        let c = '{';
        std::thread::sleep(std::time::Duration::from_millis(1));
        Ok(())
    }
    async fn flush_durable(&mut self) -> Result<(), DrainError> {
        use std::io::Write;
        std::fs::write("x", b"y").unwrap();
        let _ = std::net::TcpStream::connect("127.0.0.1:1");
        Ok(())
    }
}
impl Drop for D { fn drop(&mut self) { std::thread::sleep(std::time::Duration::ZERO); } }
"#;

#[test]
fn the_checker_catches_planted_blocking_calls_and_names_their_lines() {
    let (impls, found) = violations_in(Path::new("src/planted.rs"), PLANTED);
    assert_eq!(impls, 1, "only the SinkDrain impl is checked");
    let lines: Vec<(usize, &str)> = found.iter().map(|v| (v.line, v.pattern)).collect();
    assert_eq!(
        lines,
        vec![(10, "std::thread::sleep"), (14, "std::io::Write"), (15, "std::fs"), (16, "std::net")],
        "{found:#?}"
    );
    assert_eq!(
        found[0].to_string(),
        "src/planted.rs:10: `std::thread::sleep` inside an impl SinkDrain: blocks the worker thread; use tokio::time::sleep"
    );
}

#[test]
fn imported_names_and_generic_impls_are_caught_too() {
    let src = "use std::thread;\nimpl<T: Send> otlp_sink::SinkDrain<T> for Wrapper<T> where T: Clone {\n    async fn write_batch(&mut self, b: Vec<T>) -> R { thread::sleep(D); futures::executor::block_on(f); Ok(()) }\n}\n";
    let (impls, found) = violations_in(Path::new("src/x.rs"), src);
    assert_eq!(impls, 1);
    let lines: Vec<(usize, &str)> = found.iter().map(|v| (v.line, v.pattern)).collect();
    assert_eq!(lines, vec![(3, "thread::sleep"), (3, "block_on(")], "{found:#?}");
}

#[test]
fn an_impl_with_a_sink_drain_bound_is_not_a_drain() {
    let src = "impl<T, D: SinkDrain<T>> Actor<T, D> {\n    fn run(&self) { std::thread::sleep(D); }\n}\n";
    assert_eq!(violations_in(Path::new("src/z.rs"), src).0, 0);
}

#[test]
fn a_clean_drain_passes() {
    let src = "impl SinkDrain<u8> for Ok {\n    async fn write_batch(&mut self, b: Vec<u8>) -> R {\n        tokio::time::sleep(D).await;\n        tokio::fs::write(p, b).await?;\n        tokio::task::spawn_blocking(move || std::fs::write(p, b)).await??; // allowed? no: see below\n        Ok(())\n    }\n}\n";
    let (_, found) = violations_in(Path::new("src/y.rs"), src);
    // Even inside spawn_blocking the checker flags std::fs by name: the rule
    // is textual, so a drain moves such code to a function outside the impl.
    assert_eq!(found.iter().map(|v| v.line).collect::<Vec<_>>(), vec![5]);
    let clean = src.replace(
        "        tokio::task::spawn_blocking(move || std::fs::write(p, b)).await??; // allowed? no: see below\n",
        "",
    );
    assert!(violations_in(Path::new("src/y.rs"), &clean).1.is_empty());
}
