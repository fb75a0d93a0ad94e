//! Access logs in Classic ELB's format: the data plane builds a `Record` per request (or per
//! TCP/SSL connection) and pushes it on a lock-free queue (`AccessLogSink`); a writer off the
//! request path formats it (`Record::write_line`) and appends it to the current file of its
//! load balancer, and to the live tails.

mod record;
mod sink;

pub use record::{HttpFields, Record, RequestLine, TlsFields};
pub use sink::{channel, AccessLogQueue, AccessLogSink, Following, LogTarget};
