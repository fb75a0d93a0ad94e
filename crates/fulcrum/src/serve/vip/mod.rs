//! The fleet's floating address (`--vip ADDR/PREFIX --vip-interface IF`), the "Elastic IP" of
//! the balancer: the nodes elect one holder through an etcd lease (`Store::campaign`); the
//! holder adds the address to its interface and announces it; a holder that loses its lease
//! drops the address before etcd could give the role to another node; a node that stops (SIGTERM,
//! an upgrade) drops it and resigns, so another takes it at once.

mod announce;

use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use clap::Args;
use fulcrum_store::{Campaign, Leadership, Store};
use tokio::time::Instant;

/// Announcements sent when the address is taken: more than one, as a frame may be lost.
const ANNOUNCEMENTS: usize = 3;

#[derive(Args, Debug, Clone)]
pub struct VipArgs {
    /// A floating address for the fleet: one node at a time holds it on --vip-interface; when
    /// the holder dies it moves to a live node within about 3 s, on a planned stop within a
    /// second. Needs --store etcd://, CAP_NET_ADMIN and CAP_NET_RAW, iproute2's `ip`, and every
    /// node on the same layer-2 segment.
    #[arg(long, value_name = "ADDR/PREFIX", requires = "vip_interface")]
    pub vip: Option<String>,
    /// The interface the floating address is added to.
    #[arg(long, value_name = "IF", requires = "vip")]
    pub vip_interface: Option<String>,
}

/// The address, its prefix length and its interface.
#[derive(Debug, Clone)]
struct Floating {
    addr: IpAddr,
    prefix: u8,
    interface: String,
}

impl Floating {
    fn parse(vip: &str, interface: &str) -> anyhow::Result<Floating> {
        let (addr, prefix) = vip
            .split_once('/')
            .with_context(|| format!("--vip {vip}: expected ADDR/PREFIX, like 10.0.0.100/24"))?;
        let addr: IpAddr = addr
            .parse()
            .with_context(|| format!("--vip {vip}: {addr} is not an IP address"))?;
        let prefix: u8 = prefix
            .parse()
            .with_context(|| format!("--vip {vip}: {prefix} is not a prefix length"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        if prefix > max || addr.is_unspecified() || addr.is_multicast() || addr.is_loopback() {
            bail!("--vip {vip}: not an address a host can hold");
        }
        if interface.is_empty()
            || !std::path::Path::new("/sys/class/net")
                .join(interface)
                .exists()
        {
            bail!("--vip-interface {interface}: no such interface");
        }
        Ok(Floating {
            addr,
            prefix,
            interface: interface.to_owned(),
        })
    }

    fn cidr(&self) -> String {
        format!("{}/{}", self.addr, self.prefix)
    }

    /// Adds the address to the interface (an address left there by a crashed run is fine) and
    /// announces it.
    async fn take(&self) {
        let mut args = vec!["addr", "add"];
        let cidr = self.cidr();
        args.extend([cidr.as_str(), "dev", self.interface.as_str()]);
        if self.addr.is_ipv6() {
            // Usable at once: duplicate address detection would hold it for a second or more,
            // and the election already ensures it is nobody else's.
            args.push("nodad");
        }
        match ip(&args).await {
            Ok(()) => {}
            Err(e) if e.contains("File exists") || e.contains("exists") => {}
            Err(e) => {
                tracing::error!(event = "vip_failed", address = %cidr, interface = %self.interface, error = %e, "cannot add the floating address");
                return;
            }
        }
        let (interface, addr) = (self.interface.clone(), self.addr);
        let announced = tokio::task::spawn_blocking(move || {
            announce::announce(&interface, addr, ANNOUNCEMENTS)
        })
        .await;
        match announced {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(address = %cidr, error = %e, "cannot announce the floating address; neighbours learn it when their caches expire")
            }
            Err(e) => tracing::warn!(error = %e, "the announcement task failed"),
        }
        tracing::info!(event = "vip_taken", address = %cidr, interface = %self.interface, "this node holds the floating address");
    }

    async fn release(&self, why: &str) {
        let cidr = self.cidr();
        match ip(&["addr", "del", &cidr, "dev", &self.interface]).await {
            Ok(()) => {
                tracing::info!(event = "vip_released", address = %cidr, interface = %self.interface, reason = why, "dropped the floating address")
            }
            Err(e) => {
                tracing::error!(event = "vip_failed", address = %cidr, error = %e, "cannot remove the floating address")
            }
        }
    }
}

/// Runs iproute2's `ip` with `args`; its error output on failure.
async fn ip(args: &[&str]) -> Result<(), String> {
    let out = tokio::process::Command::new("ip")
        .args(args)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_owned())
    }
}

/// This node's part in holding the floating address.
pub struct Vip {
    task: tokio::task::JoinHandle<()>,
    campaign: Arc<Campaign>,
    floating: Floating,
    held: Arc<Mutex<Option<String>>>,
}

impl Vip {
    /// Starts running for the address named by the flags, if any. `held` says which address
    /// this node holds now (for its record in the fleet).
    pub fn start(
        args: &VipArgs,
        store: &Store,
        node_id: &str,
        held: Arc<Mutex<Option<String>>>,
    ) -> anyhow::Result<Option<Vip>> {
        let (Some(vip), Some(interface)) = (&args.vip, &args.vip_interface) else {
            return Ok(None);
        };
        let floating = Floating::parse(vip, interface)?;
        let Some(campaign) = store.campaign(&format!("vip/{}", floating.addr), node_id) else {
            bail!("--vip needs a fleet: --store etcd://...");
        };
        let campaign = Arc::new(campaign);
        let task = tokio::spawn(hold(
            campaign.leadership(),
            floating.clone(),
            Arc::clone(&held),
        ));
        Ok(Some(Vip {
            task,
            campaign,
            floating,
            held,
        }))
    }

    /// A planned stop: the address goes first, then the role, so that the next holder never
    /// overlaps this one.
    pub async fn stop(self) {
        self.task.abort();
        let _ = self.task.await;
        if self
            .held
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .is_some()
        {
            self.floating.release("this node is stopping").await;
        }
        let campaign = self.campaign;
        let _ = tokio::task::spawn_blocking(move || campaign.resign()).await;
    }
}

/// Follows this node's leadership: adds the address when it becomes the holder, drops it when
/// it is not any more, or when its time as holder runs out without a renewal.
async fn hold(
    mut leadership: tokio::sync::watch::Receiver<Leadership>,
    floating: Floating,
    held: Arc<Mutex<Option<String>>>,
) {
    let mut until: Option<Instant> = None;
    let set_held = |v: Option<String>| *held.lock().unwrap_or_else(|p| p.into_inner()) = v;
    // An address left on the interface by a run that was killed would answer for the fleet
    // while another node holds it: it goes before this node runs.
    if ip(&["addr", "del", &floating.cidr(), "dev", &floating.interface])
        .await
        .is_ok()
    {
        tracing::warn!(event = "vip_released", address = %floating.cidr(), "removed the floating address an earlier run left on the interface");
    }
    loop {
        let expiry = async {
            match until {
                Some(t) => tokio::time::sleep_until(t).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            changed = leadership.changed() => {
                if changed.is_err() {
                    return;
                }
                let now = *leadership.borrow_and_update();
                match now {
                    Leadership::Held { until: t } => {
                        if until.is_none() {
                            floating.take().await;
                            set_held(Some(floating.cidr()));
                        }
                        until = Some(t);
                    }
                    Leadership::NotHeld => {
                        if until.take().is_some() {
                            set_held(None);
                            floating.release("another node holds it now, or etcd is lost").await;
                        }
                    }
                }
            }
            () = expiry => {
                until = None;
                set_held(None);
                floating.release("its lease could not be renewed in time").await;
            }
        }
    }
}
