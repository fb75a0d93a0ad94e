//! Where access-log files go: ELB's S3 key layout, laid out under a local directory so that
//! `aws s3 sync DIR s3://bucket/` gives the bucket the keys ELB would have written:
//!
//! ```text
//! [prefix/]AWSLogs/<account>/elasticloadbalancing/<region>/yyyy/mm/dd/
//!     <account>_elasticloadbalancing_<region>_<load-balancer>_<end-time>_<node-ip>_<random>.log
//! [prefix/]AWSLogs/<account>/ELBAccessLogTestFile
//! ```
//!
//! `end-time` is the end of the file's interval (`20140215T2340Z`), `yyyy/mm/dd` the date it is
//! published at (that same end: files are published when their interval ends), `random` eight
//! lowercase letters and digits, as ELB's.

use std::fmt::Write;
use std::net::IpAddr;
use std::path::{Component, Path, PathBuf};
use std::time::SystemTime;

use rand::Rng;

/// The name ELB gives the file it writes when logging is turned on.
pub const TEST_FILE: &str = "ELBAccessLogTestFile";

/// The account, region and node every key of this node names.
#[derive(Debug, Clone)]
pub struct Layout {
    pub account: String,
    pub region: String,
    /// The load balancer node's address, in every file name.
    pub node_ip: IpAddr,
}

/// An `S3BucketPrefix` that cannot be a path inside the access-log directory.
#[derive(Debug, thiserror::Error)]
#[error("S3BucketPrefix '{0}' cannot be laid out as a directory: it has a '.' or '..' segment or a NUL byte")]
pub struct BadPrefix(pub String);

/// `S3BucketPrefix` as a relative directory: S3 keys split at `/`; empty segments (a leading,
/// trailing or doubled `/`) name nothing, and `.`/`..` would leave the tree, so they are refused.
pub fn prefix_dir(prefix: Option<&str>) -> Result<PathBuf, BadPrefix> {
    let mut dir = PathBuf::new();
    for segment in prefix.unwrap_or("").split('/').filter(|s| !s.is_empty()) {
        let ok = !segment.contains('\0')
            && matches!(
                Path::new(segment).components().next(),
                Some(Component::Normal(_))
            )
            && Path::new(segment).components().count() == 1;
        if !ok {
            return Err(BadPrefix(prefix.unwrap_or("").to_owned()));
        }
        dir.push(segment);
    }
    Ok(dir)
}

impl Layout {
    /// The key (a relative path) of one log file of `load_balancer` for the interval ending at
    /// `end`.
    pub fn log_file(
        &self,
        prefix: &Path,
        load_balancer: &str,
        end: SystemTime,
        random: &str,
    ) -> PathBuf {
        let t = time::OffsetDateTime::from(end);
        let mut name = String::with_capacity(128);
        let _ = write!(
            name,
            "{account}_elasticloadbalancing_{region}_{load_balancer}_{y:04}{m:02}{d:02}T{hh:02}{mm:02}Z_{ip}_{random}.log",
            account = self.account,
            region = self.region,
            y = t.year(),
            m = u8::from(t.month()),
            d = t.day(),
            hh = t.hour(),
            mm = t.minute(),
            ip = self.node_ip,
        );
        self.service_dir(prefix)
            .join(format!("{:04}", t.year()))
            .join(format!("{:02}", u8::from(t.month())))
            .join(format!("{:02}", t.day()))
            .join(name)
    }

    /// The key of the test file written when logging is turned on.
    pub fn test_file(&self, prefix: &Path) -> PathBuf {
        prefix.join("AWSLogs").join(&self.account).join(TEST_FILE)
    }

    fn service_dir(&self, prefix: &Path) -> PathBuf {
        prefix
            .join("AWSLogs")
            .join(&self.account)
            .join("elasticloadbalancing")
            .join(&self.region)
    }
}

/// The node's address for file names: the first specific `--bind` address; with only wildcard
/// ones (`0.0.0.0`, `::`), the address this host would send from to reach the Internet (a UDP
/// socket is connected, which sends nothing, and asked its local address); failing that,
/// loopback.
pub fn node_ip(bind: &[IpAddr]) -> IpAddr {
    if let Some(ip) = bind.iter().find(|ip| !ip.is_unspecified()) {
        return *ip;
    }
    let v6 = bind.first().is_some_and(IpAddr::is_ipv6);
    // Documentation addresses (RFC 5737, RFC 3849): only the route to them is looked up.
    let (any, probe): (IpAddr, IpAddr) = if v6 {
        (
            std::net::Ipv6Addr::UNSPECIFIED.into(),
            "2001:db8::1".parse().expect("an IPv6 address"),
        )
    } else {
        (
            std::net::Ipv4Addr::UNSPECIFIED.into(),
            std::net::Ipv4Addr::new(192, 0, 2, 1).into(),
        )
    };
    std::net::UdpSocket::bind((any, 0))
        .and_then(|s| s.connect((probe, 9)).map(|()| s))
        .and_then(|s| s.local_addr())
        .map(|a| a.ip())
        .ok()
        .filter(|ip| !ip.is_unspecified())
        .unwrap_or(if v6 {
            std::net::Ipv6Addr::LOCALHOST.into()
        } else {
            std::net::Ipv4Addr::LOCALHOST.into()
        })
}

/// What the test file says, as ELB's does: `Enable AccessLog for ELB: NAME at TIME`.
pub fn test_file_text(load_balancer: &str, at: SystemTime) -> String {
    let t = time::OffsetDateTime::from(at);
    format!(
        "Enable AccessLog for ELB: {load_balancer} at {:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// Eight lowercase letters and digits: two nodes (or two processes of one node, during an
/// upgrade) never name a file of the same interval alike.
pub fn random_string() -> String {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..8)
        .map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn layout() -> Layout {
        Layout {
            account: "123456789012".into(),
            region: "us-west-2".into(),
            node_ip: "172.16.1.192".parse().unwrap(),
        }
    }

    #[test]
    fn file_names_are_elbs() {
        // 2014-02-15T23:40:00Z, the end time of ELB's example.
        let end = SystemTime::UNIX_EPOCH + Duration::from_secs(1_392_507_600);
        let prefix = prefix_dir(Some("my-app")).unwrap();
        let key = layout().log_file(&prefix, "my-loadbalancer", end, "20sg8hgm");
        assert_eq!(
            key,
            Path::new(
                "my-app/AWSLogs/123456789012/elasticloadbalancing/us-west-2/2014/02/15/\
                 123456789012_elasticloadbalancing_us-west-2_my-loadbalancer_20140215T2340Z_172.16.1.192_20sg8hgm.log"
            )
        );
        assert_eq!(
            layout().test_file(&prefix_dir(None).unwrap()),
            Path::new("AWSLogs/123456789012/ELBAccessLogTestFile")
        );
        assert_eq!(
            test_file_text("web", end + Duration::from_millis(7)),
            "Enable AccessLog for ELB: web at 2014-02-15T23:40:00.007Z"
        );
    }

    #[test]
    fn prefixes_stay_inside_the_tree() {
        assert_eq!(prefix_dir(Some("/a//b/")).unwrap(), Path::new("a/b"));
        assert_eq!(prefix_dir(Some("")).unwrap(), Path::new(""));
        for bad in ["..", "a/../../etc", "./a", "a/."] {
            assert!(prefix_dir(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn random_strings_are_eight_letters_or_digits() {
        let s = random_string();
        assert_eq!(s.len(), 8);
        assert!(s
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit()));
        assert_ne!(random_string(), s);
    }
}
