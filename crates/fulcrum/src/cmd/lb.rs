//! `fulcrum lb`: load balancers, their listeners, health check and instances.

use clap::{Args, Subcommand};
use serde_json::{json, Value};

use super::{block_on, field, items, print, table};
use crate::client::{Client, ClientArgs, Params, ELB};

#[derive(Args, Debug)]
pub struct LbArgs {
    #[command(flatten)]
    client: ClientArgs,
    #[command(subcommand)]
    command: LbCommand,
}

#[derive(Subcommand, Debug)]
enum LbCommand {
    /// Create a load balancer with its listeners.
    Create {
        /// The load balancer's name.
        #[arg(long)]
        name: String,
        /// PROTOCOL:PORT:INSTANCE_PROTOCOL:INSTANCE_PORT[:CERT], e.g. HTTPS:443:HTTP:80:www
        /// (CERT: a certificate's name or ARN, for HTTPS and SSL). Repeat for more listeners.
        #[arg(long = "listener", value_name = "LISTENER", required = true, value_parser = parse_listener)]
        listeners: Vec<ListenerSpec>,
    },
    /// Describe one load balancer, or all of them.
    Describe {
        #[arg(long)]
        name: Option<String>,
    },
    /// Delete a load balancer: its listeners close; its instances and certificates stay.
    Delete {
        #[arg(long)]
        name: String,
    },
    /// Set how instances are checked before they get traffic.
    HealthCheck {
        #[arg(long)]
        name: String,
        /// What to check: HTTP:PORT/PATH, HTTPS:PORT/PATH, TCP:PORT or SSL:PORT.
        #[arg(long)]
        target: String,
        /// Seconds between checks of one instance.
        #[arg(long, default_value_t = 30)]
        interval: u32,
        /// Seconds a check may take (less than --interval).
        #[arg(long, default_value_t = 5)]
        timeout: u32,
        /// Checks in a row to pass before an instance gets traffic.
        #[arg(long, default_value_t = 10)]
        healthy: u32,
        /// Checks in a row to fail before an instance gets no traffic.
        #[arg(long, default_value_t = 2)]
        unhealthy: u32,
    },
    /// Serve another certificate on an HTTPS or SSL listener (rotation): new handshakes get
    /// it at once, open connections keep theirs.
    SetCertificate {
        #[arg(long)]
        name: String,
        /// The listener's port.
        #[arg(long)]
        port: u16,
        /// The certificate's name or ARN.
        #[arg(long)]
        cert: String,
    },
    /// Add a certificate to an HTTPS or SSL listener, served to clients whose SNI matches its
    /// names (the listener's first certificate stays the default). Adding one already there
    /// changes nothing.
    AddCertificate {
        #[arg(long)]
        name: String,
        /// The listener's port.
        #[arg(long)]
        port: u16,
        /// The certificate's name or ARN.
        #[arg(long, visible_alias = "cert")]
        certificate: String,
    },
    /// Remove a certificate from an HTTPS or SSL listener (not its default: replace that with
    /// set-certificate). New handshakes stop getting it at once.
    RemoveCertificate {
        #[arg(long)]
        name: String,
        /// The listener's port.
        #[arg(long)]
        port: u16,
        /// The certificate's name or ARN.
        #[arg(long, visible_alias = "cert")]
        certificate: String,
    },
    /// List the certificates of an HTTPS or SSL listener, the default first.
    Certificates {
        #[arg(long)]
        name: String,
        /// The listener's port.
        #[arg(long)]
        port: u16,
    },
    /// Register instances (inventory ids or IP addresses) with a load balancer.
    Register {
        #[arg(long)]
        name: String,
        #[arg(value_name = "INSTANCE", required = true)]
        instances: Vec<String>,
    },
    /// Deregister instances from a load balancer.
    Deregister {
        #[arg(long)]
        name: String,
        #[arg(value_name = "INSTANCE", required = true)]
        instances: Vec<String>,
    },
    /// Show the health of each instance of a load balancer.
    Health {
        #[arg(long)]
        name: String,
    },
    /// Print a load balancer's last access-log lines (Classic ELB's format) and, with
    /// --follow, new ones as requests come, even while its access log is off. With --enable or
    /// --disable, turn its access log (the AccessLog attribute) on or off instead.
    Logs {
        /// The load balancer.
        #[arg(long)]
        name: String,
        /// Keep printing lines as they come, until interrupted.
        #[arg(long, short = 'f', conflicts_with_all = ["enable", "disable"])]
        follow: bool,
        /// At most this many of the last lines first (the node keeps 100).
        #[arg(long, default_value_t = 100)]
        lines: usize,
        /// Turn the access log on: a file every --emit-interval minutes in the node's
        /// --access-log-dir, laid out as ELB lays out its S3 keys.
        #[arg(long, conflicts_with = "disable")]
        enable: bool,
        /// Turn the access log off (files already written stay).
        #[arg(long)]
        disable: bool,
        /// With --enable: minutes per file, 5 or 60.
        #[arg(long, requires = "enable", value_parser = ["5", "60"])]
        emit_interval: Option<String>,
        /// With --enable: the S3 bucket the files are meant for (recorded; the files stay
        /// local until you `aws s3 sync` them there).
        #[arg(long, requires = "enable")]
        s3_bucket_name: Option<String>,
        /// With --enable: the key prefix in that bucket, the first directories of the files.
        #[arg(long, requires = "enable")]
        s3_bucket_prefix: Option<String>,
    },
}

/// One `--listener`, checked before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
struct ListenerSpec {
    protocol: String,
    port: u16,
    instance_protocol: String,
    instance_port: u16,
    certificate: Option<String>,
}

fn parse_listener(s: &str) -> Result<ListenerSpec, String> {
    // At most five fields: a certificate ARN has colons of its own.
    let parts: Vec<&str> = s.splitn(5, ':').collect();
    let usage = || format!("'{s}' is not PROTOCOL:PORT:INSTANCE_PROTOCOL:INSTANCE_PORT[:CERT]");
    if parts.len() < 4 {
        return Err(usage());
    }
    let protocol = |p: &str| {
        let p = p.to_ascii_uppercase();
        if ["HTTP", "HTTPS", "TCP", "SSL"].contains(&p.as_str()) {
            Ok(p)
        } else {
            Err(format!("'{p}' in '{s}' is not HTTP, HTTPS, TCP or SSL"))
        }
    };
    let port = |p: &str| {
        p.parse::<u16>()
            .ok()
            .filter(|n| *n != 0)
            .ok_or_else(|| format!("'{p}' in '{s}' is not a port (1-65535)"))
    };
    Ok(ListenerSpec {
        protocol: protocol(parts[0])?,
        port: port(parts[1])?,
        instance_protocol: protocol(parts[2])?,
        instance_port: port(parts[3])?,
        certificate: parts
            .get(4)
            .filter(|c| !c.is_empty())
            .map(|c| (*c).to_owned()),
    })
}

pub fn run(args: LbArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    block_on(exec(&client, args.command))
}

async fn exec(c: &Client, command: LbCommand) -> anyhow::Result<()> {
    match command {
        LbCommand::Create { name, listeners } => {
            let mut p = Params::default();
            p.set("LoadBalancerName", &name);
            for (i, l) in listeners.iter().enumerate() {
                let m = format!("Listeners.member.{}", i + 1);
                p.set(&format!("{m}.Protocol"), &l.protocol)
                    .set(&format!("{m}.LoadBalancerPort"), l.port)
                    .set(&format!("{m}.InstanceProtocol"), &l.instance_protocol)
                    .set(&format!("{m}.InstancePort"), l.instance_port)
                    // The API takes a certificate's name, id or ARN here.
                    .opt(&format!("{m}.SSLCertificateId"), l.certificate.as_ref());
            }
            let r = c.call(ELB, "CreateLoadBalancer", &p.0).await?;
            print(c, &r, |r| {
                format!("Created load balancer {name} at {}.", field(r, "DNSName"))
            });
        }
        LbCommand::Describe { name } => {
            let all = describe(c, name.as_deref()).await?;
            let r = json!({ "LoadBalancerDescriptions": all });
            print(c, &r, |r| {
                let lbs = items(r, "LoadBalancerDescriptions");
                if lbs.is_empty() {
                    return "No load balancers.".to_owned();
                }
                lbs.iter().map(describe_text).collect::<Vec<_>>().join("\n")
            });
        }
        LbCommand::Delete { name } => {
            let mut p = Params::default();
            p.set("LoadBalancerName", &name);
            let r = c.call(ELB, "DeleteLoadBalancer", &p.0).await?;
            print(c, &r, |_| format!("Load balancer {name} is deleted."));
        }
        LbCommand::HealthCheck {
            name,
            target,
            interval,
            timeout,
            healthy,
            unhealthy,
        } => {
            let mut p = Params::default();
            p.set("LoadBalancerName", &name)
                .set("HealthCheck.Target", target)
                .set("HealthCheck.Interval", interval)
                .set("HealthCheck.Timeout", timeout)
                .set("HealthCheck.HealthyThreshold", healthy)
                .set("HealthCheck.UnhealthyThreshold", unhealthy);
            let r = c.call(ELB, "ConfigureHealthCheck", &p.0).await?;
            print(c, &r, |r| {
                format!("{name}: {}", health_check_text(&r["HealthCheck"]))
            });
        }
        LbCommand::SetCertificate { name, port, cert } => {
            let mut p = Params::default();
            p.set("LoadBalancerName", &name)
                .set("LoadBalancerPort", port)
                .set("SSLCertificateId", &cert);
            let r = c
                .call(ELB, "SetLoadBalancerListenerSSLCertificate", &p.0)
                .await?;
            print(c, &r, |_| {
                format!("{name}: the listener on port {port} now serves {cert}.")
            });
        }
        LbCommand::AddCertificate {
            name,
            port,
            certificate,
        } => {
            let r = certificates_call(c, "AddListenerCertificates", &name, port, &certificate)
                .await
                .map(with_booleans)?;
            print(c, &r, |_| {
                format!("{name}: the listener on port {port} also serves {certificate}.")
            });
        }
        LbCommand::RemoveCertificate {
            name,
            port,
            certificate,
        } => {
            let r = certificates_call(c, "RemoveListenerCertificates", &name, port, &certificate)
                .await?;
            print(c, &r, |_| {
                format!("{name}: the listener on port {port} no longer serves {certificate}.")
            });
        }
        LbCommand::Certificates { name, port } => {
            let mut p = Params::default();
            p.set("LoadBalancerName", &name)
                .set("LoadBalancerPort", port);
            let r = with_booleans(c.call(ELB, "DescribeListenerCertificates", &p.0).await?);
            print(c, &r, |r| {
                let rows: Vec<_> = items(r, "Certificates")
                    .iter()
                    .map(|cert| {
                        let default = if cert["IsDefault"] == Value::Bool(true) {
                            "default"
                        } else {
                            ""
                        };
                        vec![field(cert, "CertificateArn"), default.to_owned()]
                    })
                    .collect();
                table(
                    &["CERTIFICATE", "DEFAULT"],
                    &rows,
                    &format!("The listener on port {port} has no certificates."),
                )
            });
        }
        LbCommand::Register { name, instances } => {
            instances_call(c, "RegisterInstancesWithLoadBalancer", &name, &instances).await?;
        }
        LbCommand::Deregister { name, instances } => {
            instances_call(c, "DeregisterInstancesFromLoadBalancer", &name, &instances).await?;
        }
        LbCommand::Logs {
            name,
            follow,
            lines,
            enable,
            disable,
            emit_interval,
            s3_bucket_name,
            s3_bucket_prefix,
        } => {
            let command = if enable || disable {
                LogsCommand::Set {
                    enabled: enable,
                    emit_interval,
                    s3_bucket_name,
                    s3_bucket_prefix,
                }
            } else {
                LogsCommand::Print { follow, lines }
            };
            logs(c, &name, command).await?;
        }
        LbCommand::Health { name } => {
            let mut p = Params::default();
            p.set("LoadBalancerName", &name);
            let r = c.call(ELB, "DescribeInstanceHealth", &p.0).await?;
            print(c, &r, |r| {
                let rows: Vec<_> = items(r, "InstanceStates")
                    .iter()
                    .map(|s| {
                        ["InstanceId", "State", "ReasonCode", "Description"]
                            .map(|k| field(s, k))
                            .to_vec()
                    })
                    .collect();
                table(
                    &["INSTANCE", "STATE", "REASON", "DESCRIPTION"],
                    &rows,
                    &format!("{name} has no instances."),
                )
            });
        }
    }
    Ok(())
}

/// `fulcrum lb logs`: turns the access log on or off, or prints its lines.
async fn logs(c: &Client, name: &str, command: LogsCommand) -> anyhow::Result<()> {
    let mut p = Params::default();
    p.set("LoadBalancerName", name);
    match command {
        LogsCommand::Set {
            enabled,
            emit_interval,
            s3_bucket_name,
            s3_bucket_prefix,
        } => {
            let a = "LoadBalancerAttributes.AccessLog";
            p.set(&format!("{a}.Enabled"), enabled)
                .opt(&format!("{a}.EmitInterval"), emit_interval)
                .opt(&format!("{a}.S3BucketName"), s3_bucket_name)
                .opt(&format!("{a}.S3BucketPrefix"), s3_bucket_prefix);
            let r = c.call(ELB, "ModifyLoadBalancerAttributes", &p.0).await?;
            print(c, &r, |r| {
                let log = &r["LoadBalancerAttributes"]["AccessLog"];
                if field(log, "Enabled") != "true" {
                    return format!("{name}: access log off.");
                }
                let mut text = format!(
                    "{name}: access log on, a file every {} minutes",
                    field(log, "EmitInterval")
                );
                for key in ["S3BucketName", "S3BucketPrefix"] {
                    let value = field(log, key);
                    if !value.is_empty() {
                        text.push_str(&format!(", {key} {value}"));
                    }
                }
                text + "."
            });
            Ok(())
        }
        LogsCommand::Print { follow, lines } => {
            let mut stdout = std::io::stdout().lock();
            let mut out = |data: &[u8]| {
                std::io::Write::write_all(&mut stdout, data)?;
                std::io::Write::flush(&mut stdout)
            };
            p.set("Lines", lines);
            if !follow {
                return c.lines(ELB, TAIL_ACTION, &p.0, true, &mut out).await;
            }
            p.set("Follow", true);
            follow_lines(c, p, &mut out).await
        }
    }
}

/// fulcrum's own action behind `lb logs`.
const TAIL_ACTION: &str = "GetAccessLogTail";
/// A follow whose connection broke (the node restarted, or handed over to a new process)
/// connects again for this long before it gives up.
const RECONNECT_FOR: std::time::Duration = std::time::Duration::from_secs(15);

/// Streams new lines until interrupted. The node ends a follow now and then (its connections
/// are bounded in time, a node that is replaced closes them): this connects again and goes on
/// from the lines that come then (without the recent ones again), and stops at the API's own
/// refusal (the load balancer was deleted) or once the node stays unreachable.
async fn follow_lines(
    c: &Client,
    mut p: Params,
    out: &mut impl FnMut(&[u8]) -> std::io::Result<()>,
) -> anyhow::Result<()> {
    let mut failing_since: Option<tokio::time::Instant> = None;
    loop {
        match c.lines(ELB, TAIL_ACTION, &p.0, false, &mut *out).await {
            Ok(()) => {
                failing_since = None;
                // Not a busy loop, whatever ends the answers.
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
            Err(e) if e.downcast_ref::<crate::client::ApiError>().is_some() => return Err(e),
            Err(e) => {
                let since = *failing_since.get_or_insert_with(tokio::time::Instant::now);
                if since.elapsed() > RECONNECT_FOR {
                    return Err(e);
                }
                tokio::time::sleep(std::time::Duration::from_millis(250)).await;
            }
        }
        // From now on, only what comes.
        for (k, v) in &mut p.0 {
            if k == "Lines" {
                *v = "0".to_owned();
            }
        }
    }
}

/// What `lb logs` was asked to do.
enum LogsCommand {
    Set {
        enabled: bool,
        emit_interval: Option<String>,
        s3_bucket_name: Option<String>,
        s3_bucket_prefix: Option<String>,
    },
    Print {
        follow: bool,
        lines: usize,
    },
}

/// Register or deregister; both answer with the instances registered now.
async fn instances_call(
    c: &Client,
    action: &str,
    name: &str,
    instances: &[String],
) -> anyhow::Result<()> {
    let mut p = Params::default();
    p.set("LoadBalancerName", name);
    for (i, id) in instances.iter().enumerate() {
        p.set(&format!("Instances.member.{}.InstanceId", i + 1), id);
    }
    let r = c.call(ELB, action, &p.0).await?;
    print(c, &r, |r| {
        let now: Vec<_> = items(r, "Instances")
            .iter()
            .map(|i| field(i, "InstanceId"))
            .collect();
        if now.is_empty() {
            format!("{name} has no instances now.")
        } else {
            format!("{name} has instances: {}", now.join(", "))
        }
    });
    Ok(())
}

/// Add or remove one certificate of a listener.
async fn certificates_call(
    c: &Client,
    action: &str,
    name: &str,
    port: u16,
    certificate: &str,
) -> anyhow::Result<Value> {
    let mut p = Params::default();
    p.set("LoadBalancerName", name)
        .set("LoadBalancerPort", port)
        // The API takes a certificate's name or id here too.
        .set("Certificates.member.1.CertificateArn", certificate);
    c.call(ELB, action, &p.0).await
}

/// `Certificates` as JSON shows them: a list (also when empty), `IsDefault` a boolean.
fn with_booleans(mut r: Value) -> Value {
    if let Value::Object(o) = &mut r {
        let list = o
            .entry("Certificates")
            .or_insert_with(|| Value::Array(Vec::new()));
        if !list.is_array() {
            *list = Value::Array(Vec::new());
        }
        for cert in list.as_array_mut().into_iter().flatten() {
            if let Some(b) = cert["IsDefault"]
                .as_str()
                .and_then(|t| t.parse::<bool>().ok())
            {
                cert["IsDefault"] = Value::Bool(b);
            }
        }
    }
    r
}

/// One load balancer by name, or all of them page after page.
async fn describe(c: &Client, name: Option<&str>) -> anyhow::Result<Vec<Value>> {
    let mut all = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let mut p = Params::default();
        p.opt("LoadBalancerNames.member.1", name)
            .opt("Marker", marker.as_ref());
        let r = c.call(ELB, "DescribeLoadBalancers", &p.0).await?;
        all.extend_from_slice(items(&r, "LoadBalancerDescriptions"));
        marker = Some(field(&r, "NextMarker")).filter(|m| !m.is_empty());
        if marker.is_none() {
            return Ok(all);
        }
    }
}

fn health_check_text(h: &Value) -> String {
    format!(
        "{} every {}s, timeout {}s, healthy after {}, unhealthy after {}",
        field(h, "Target"),
        field(h, "Interval"),
        field(h, "Timeout"),
        field(h, "HealthyThreshold"),
        field(h, "UnhealthyThreshold")
    )
}

fn describe_text(lb: &Value) -> String {
    let mut out = format!(
        "{}  {}  created {}\n",
        field(lb, "LoadBalancerName"),
        field(lb, "DNSName"),
        field(lb, "CreatedTime")
    );
    for d in items(lb, "ListenerDescriptions") {
        let l = &d["Listener"];
        out.push_str(&format!(
            "  listener      {}:{} -> {}:{}",
            field(l, "Protocol"),
            field(l, "LoadBalancerPort"),
            field(l, "InstanceProtocol"),
            field(l, "InstancePort")
        ));
        let cert = field(l, "SSLCertificateId");
        if !cert.is_empty() {
            out.push_str(&format!("  {cert}"));
        }
        out.push('\n');
    }
    out.push_str(&format!(
        "  health check  {}\n",
        health_check_text(&lb["HealthCheck"])
    ));
    let instances: Vec<_> = items(lb, "Instances")
        .iter()
        .map(|i| field(i, "InstanceId"))
        .collect();
    out.push_str(&format!(
        "  instances     {}\n",
        if instances.is_empty() {
            "(none)".to_owned()
        } else {
            instances.join(" ")
        }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::{parse_listener, ListenerSpec};

    #[test]
    fn listeners_parse_with_and_without_certificates() {
        assert_eq!(
            parse_listener("https:443:HTTP:80:arn:aws:iam::000000000000:server-certificate/www"),
            Ok(ListenerSpec {
                protocol: "HTTPS".to_owned(),
                port: 443,
                instance_protocol: "HTTP".to_owned(),
                instance_port: 80,
                certificate: Some("arn:aws:iam::000000000000:server-certificate/www".to_owned()),
            })
        );
        assert_eq!(parse_listener("TCP:25:TCP:2525").unwrap().certificate, None);
        assert!(parse_listener("HTTP:80").is_err());
        assert!(parse_listener("HTTP:0:HTTP:80").is_err());
        assert!(parse_listener("FTP:21:TCP:21").is_err());
    }
}
