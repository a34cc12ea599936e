//! Logging set-up: human-readable or JSON lines, always on stderr (stdout belongs to the stdio
//! transport). In the human format every field value is written with its control characters
//! escaped, so a value a client chose (a URL, a name, an error text) cannot end a log line
//! and forge the next one; the JSON format escapes them itself.

use std::fmt::{self, Write as _};

use tracing::field::Field;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::{Writer, debug_fn};

use crate::config::LogFormat;

pub fn init(format: LogFormat, filter: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(filter))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Human => builder.fmt_fields(escaped_fields()).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
    };
    // A second init (tests that build several servers) keeps the first subscriber.
    let _ = result;
}

/// The human format's fields: `message` bare, the others `name=value`, space-separated, each
/// value escaped.
pub fn escaped_fields() -> impl for<'w> FormatFields<'w> + Send + Sync + 'static {
    debug_fn(
        |w: &mut Writer<'_>, field: &Field, value: &dyn fmt::Debug| {
            if field.name() != "message" {
                write!(w, "{}=", field.name())?;
            }
            write!(Escaping(w), "{value:?}")
        },
    )
    .delimited(" ")
}

/// Writes through to `W` with control characters (and the Unicode line and paragraph
/// separators) as escapes: `\n`, `\r`, `\t`, `\u{1b}`.
struct Escaping<W>(W);

impl<W: fmt::Write> fmt::Write for Escaping<W> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let mut rest = s;
        while let Some(i) = rest.find(needs_escape) {
            self.0.write_str(&rest[..i])?;
            let c = rest[i..].chars().next().unwrap_or_default();
            match c {
                '\n' => self.0.write_str("\\n")?,
                '\r' => self.0.write_str("\\r")?,
                '\t' => self.0.write_str("\\t")?,
                c => write!(self.0, "\\u{{{:x}}}", c as u32)?,
            }
            rest = &rest[i + c.len_utf8()..];
        }
        self.0.write_str(rest)
    }
}

fn needs_escape(c: char) -> bool {
    c.is_control() || c == '\u{2028}' || c == '\u{2029}'
}

#[cfg(test)]
mod tests {
    use std::io;
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A human-format subscriber writing into a buffer the test reads.
    fn capturing() -> (Captured, impl tracing::Subscriber) {
        let out = Captured::default();
        let sink = out.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_ansi(false)
            .fmt_fields(escaped_fields())
            .with_writer(move || sink.clone())
            .finish();
        (out, subscriber)
    }

    #[test]
    fn control_characters_in_fields_cannot_forge_log_lines() {
        let (out, subscriber) = capturing();
        let url = "https://a.example/x\n2030-01-01T00:00:00Z  INFO mcp_daemon: admin signed in";
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(url = %url, name = ?"tab\there\r", "refused\u{1b}[2J {}", "msg\u{2028}x");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert_eq!(text.lines().count(), 1, "one event, one line: {text:?}");
        assert!(text.ends_with('\n'));
        assert!(
            text.contains(r"url=https://a.example/x\n2030-01-01T00:00:00Z  INFO"),
            "{text}"
        );
        assert!(text.contains(r#"name="tab\there\r""#), "{text}");
        assert!(text.contains(r"refused\u{1b}[2J msg\u{2028}x"), "{text}");
    }

    #[test]
    fn plain_values_are_written_unchanged() {
        let (out, subscriber) = capturing();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(client = "c-1", expired = 3, "expired sessions removed");
        });
        let text = String::from_utf8(out.0.lock().unwrap().clone()).unwrap();
        assert!(
            text.trim_end()
                .ends_with("expired sessions removed client=\"c-1\" expired=3"),
            "{text}"
        );
    }
}
