//! Access logs in Classic ELB's format: the data plane builds a `Record` per request (or per
//! TCP/SSL connection) and pushes it on a lock-free queue (`AccessLogSink`); a writer off the
//! request path (`writer`) formats it (`Record::write_line`) and appends it to the current file
//! of its load balancer, laid out as ELB lays out its S3 keys (`layout`), and to the live tails
//! (`tail`).

mod layout;
mod record;
mod sink;
mod tail;
mod writer;

pub use layout::{node_ip, Layout, TEST_FILE};
pub use record::{HttpFields, LineCache, Record, RequestLine, TlsFields};
pub use sink::{channel, AccessLogQueue, AccessLogSink, Following, LogTarget};
pub use tail::{Tail, Tails, RECENT_LINES};
pub use writer::{AccessLogWriter, LogSettings, SettingsHandle, WriterConfig, WriterError};
