//! Tests of the state's changes: each refused change leaves the state as it was.

use crate::*;

fn cert(id: &str, name: &str) -> ServerCertificate {
    ServerCertificate {
        id: id.into(),
        name: name.into(),
        path: "/".into(),
        upload_date: 0,
        expiration: 0,
        body_pem: String::new(),
        chain_pem: None,
        private_key: PrivateKeyPem::new("k".into()),
        tags: vec![],
    }
}

fn http(port: u16) -> Listener {
    Listener::new(Protocol::Http, port, Protocol::Http, 80)
}

fn https(port: u16, cert: &str) -> Listener {
    let mut l = Listener::new(Protocol::Https, port, Protocol::Http, 80);
    l.certificates.push(cert.into());
    l
}

fn state() -> State {
    let mut s = State::default();
    s.add_certificate(cert("C1", "one")).unwrap();
    s.create_load_balancer("web", vec![http(80)], 1).unwrap();
    s
}

/// Runs a change that must fail, and checks it failed with `code` without touching the state.
fn refused(s: &mut State, code: &str, change: impl FnOnce(&mut State) -> Result<(), ModelError>) {
    let before = s.clone();
    let err = change(s).unwrap_err();
    assert_eq!(err.code(), code, "{err}");
    assert_eq!(*s, before, "a refused change must not modify the state");
}

#[test]
fn create_load_balancer_defaults_and_idempotence() {
    let mut s = state();
    let lb = s.load_balancer("web").unwrap();
    assert_eq!(lb.health_check, HealthCheck::default_for_port(80));
    assert_eq!(lb.attributes, Attributes::default());
    // An identical re-creation is accepted; a different one is a duplicate.
    s.create_load_balancer("web", vec![http(80)], 2).unwrap();
    refused(&mut s, "DuplicateLoadBalancerName", |s| {
        s.create_load_balancer("web", vec![http(81)], 2)
    });
    refused(&mut s, "ValidationError", |s| {
        s.create_load_balancer("web-", vec![http(81)], 2)
    });
    refused(&mut s, "ValidationError", |s| {
        s.create_load_balancer("x", vec![], 2)
    });
    refused(&mut s, "CertificateNotFound", |s| {
        s.create_load_balancer("x", vec![https(443, "nope")], 2)
    });
}

#[test]
fn a_port_belongs_to_one_load_balancer() {
    let mut s = state();
    refused(&mut s, "InvalidConfigurationRequest", |s| {
        s.create_load_balancer("other", vec![http(80)], 2)
    });
    s.create_load_balancer("other", vec![https(443, "C1")], 2)
        .unwrap();
    refused(&mut s, "InvalidConfigurationRequest", |s| {
        s.create_listeners("web", vec![http(443)])
    });
}

#[test]
fn listeners_add_and_remove() {
    let mut s = state();
    s.create_listeners("web", vec![https(443, "C1")]).unwrap();
    s.create_listeners("web", vec![https(443, "C1")]).unwrap();
    let mut different = http(443);
    different.instance_port = 81;
    refused(&mut s, "DuplicateListener", |s| {
        s.create_listeners("web", vec![different])
    });
    refused(&mut s, "LoadBalancerNotFound", |s| {
        s.create_listeners("nope", vec![http(1)])
    });
    // A batch with one bad listener adds none of them.
    refused(&mut s, "ValidationError", |s| {
        s.create_listeners(
            "web",
            vec![
                http(1000),
                Listener::new(Protocol::Https, 1001, Protocol::Http, 80),
            ],
        )
    });
    let ports: Vec<u16> = s
        .load_balancer("web")
        .unwrap()
        .listeners
        .iter()
        .map(|l| l.port)
        .collect();
    assert_eq!(ports, [80, 443]);
    s.delete_listeners("web", &[443, 9999]).unwrap();
    assert_eq!(s.load_balancer("web").unwrap().listeners.len(), 1);
}

#[test]
fn instances_register_and_deregister() {
    let mut s = state();
    let ip = InstanceId::parse("127.0.0.1").unwrap();
    let inv = InstanceId::parse("i-0001").unwrap();
    refused(&mut s, "InvalidInstance", |s| {
        s.register_instances("web", std::slice::from_ref(&inv))
    });
    s.put_inventory(inv.clone(), "127.0.0.2".parse().unwrap())
        .unwrap();
    s.register_instances("web", &[ip.clone(), inv.clone(), ip.clone()])
        .unwrap();
    assert_eq!(
        s.load_balancer("web").unwrap().instances,
        [ip.clone(), inv.clone()]
    );
    assert_eq!(s.instance_address(&inv), Some("127.0.0.2".parse().unwrap()));
    refused(&mut s, "InvalidConfigurationRequest", |s| {
        s.remove_inventory(&inv)
    });
    refused(&mut s, "InvalidInstance", |s| {
        s.deregister_instances("web", &[InstanceId::parse("10.9.9.9").unwrap()])
    });
    s.deregister_instances("web", std::slice::from_ref(&inv))
        .unwrap();
    s.remove_inventory(&inv).unwrap();
    refused(&mut s, "InvalidInstance", |s| s.remove_inventory(&inv));
    refused(&mut s, "InvalidInstance", |s| {
        s.put_inventory(ip.clone(), "127.0.0.1".parse().unwrap())
    });
}

#[test]
fn health_checks_are_validated() {
    let mut s = state();
    let mut hc = HealthCheck::default_for_port(80);
    hc.target = "HTTP:80/health".parse().unwrap();
    hc.interval_secs = 5;
    hc.timeout_secs = 2;
    s.configure_health_check("web", hc.clone()).unwrap();
    assert_eq!(s.load_balancer("web").unwrap().health_check, hc);
    hc.timeout_secs = 5;
    refused(&mut s, "ValidationError", |s| {
        s.configure_health_check("web", hc)
    });
}

#[test]
fn certificates_rotate_and_cannot_be_deleted_in_use() {
    let mut s = state();
    refused(&mut s, "EntityAlreadyExists", |s| {
        s.add_certificate(cert("C9", "one"))
    });
    refused(&mut s, "ValidationError", |s| {
        s.add_certificate(cert("C9", "a/b"))
    });
    s.add_certificate(cert("C2", "two")).unwrap();
    s.create_listeners("web", vec![https(443, "C1")]).unwrap();
    refused(&mut s, "DeleteConflict", |s| s.delete_certificate("one"));
    refused(&mut s, "ListenerNotFound", |s| {
        s.set_listener_certificate("web", 444, "C2")
    });
    refused(&mut s, "InvalidConfigurationRequest", |s| {
        s.set_listener_certificate("web", 80, "C2")
    });
    refused(&mut s, "CertificateNotFound", |s| {
        s.set_listener_certificate("web", 443, "C3")
    });
    s.set_listener_certificate("web", 443, "C2").unwrap();
    assert_eq!(
        s.load_balancer("web")
            .unwrap()
            .listener(443)
            .unwrap()
            .certificates,
        ["C2"]
    );
    s.delete_certificate("one").unwrap();
    refused(&mut s, "CertificateNotFound", |s| {
        s.delete_certificate("one")
    });
}

#[test]
fn a_certificate_in_use_names_its_users_and_policies_follow_its_rename() {
    let mut s = state();
    s.add_certificate(cert("C2", "two")).unwrap();
    s.create_listeners("web", vec![https(443, "C2"), https(8443, "C2")])
        .unwrap();
    let err = s.delete_certificate("two").unwrap_err();
    assert!(err.to_string().contains("web:443, web:8443"), "{err}");
    s.set_listener_certificate("web", 443, "C1").unwrap();
    s.set_listener_certificate("web", 8443, "C1").unwrap();
    s.create_policy(
        "web",
        crate::Policy {
            name: "client".into(),
            kind: crate::PolicyKind::Other {
                type_name: "BackendClientCertificatePolicyType".into(),
                attributes: vec![("ServerCertificateName".into(), "two".into())],
            },
        },
    )
    .unwrap();
    let err = s.delete_certificate("two").unwrap_err();
    assert!(err.to_string().contains("web policy client"), "{err}");
    s.update_certificate("two", Some("deux"), None).unwrap();
    let policy = s.load_balancer("web").unwrap().policy("client").unwrap();
    assert!(
        matches!(&policy.kind, crate::PolicyKind::Other { attributes, .. }
            if attributes == &[("ServerCertificateName".to_owned(), "deux".to_owned())]),
        "{policy:?}"
    );
}

#[test]
fn stickiness_policies() {
    let mut s = state();
    let lb_cookie = Policy {
        name: "lb".into(),
        kind: PolicyKind::LbCookieStickiness {
            expiration_secs: Some(60),
        },
    };
    let app_cookie = Policy {
        name: "app".into(),
        kind: PolicyKind::AppCookieStickiness {
            cookie_name: "SID".into(),
        },
    };
    s.create_policy("web", lb_cookie.clone()).unwrap();
    s.create_policy("web", app_cookie).unwrap();
    refused(&mut s, "DuplicatePolicyName", |s| {
        s.create_policy("web", lb_cookie)
    });
    refused(&mut s, "PolicyNotFound", |s| {
        s.set_listener_policies("web", 80, vec!["x".into()])
    });
    refused(&mut s, "ListenerNotFound", |s| {
        s.set_listener_policies("web", 81, vec!["lb".into()])
    });
    refused(&mut s, "InvalidConfigurationRequest", |s| {
        s.set_listener_policies("web", 80, vec!["lb".into(), "app".into()])
    });
    s.set_listener_policies("web", 80, vec!["lb".into()])
        .unwrap();
    let lb = s.load_balancer("web").unwrap();
    assert_eq!(
        lb.stickiness(lb.listener(80).unwrap()),
        Some(&PolicyKind::LbCookieStickiness {
            expiration_secs: Some(60)
        })
    );
    refused(&mut s, "InvalidConfigurationRequest", |s| {
        s.delete_policy("web", "lb")
    });
    s.set_listener_policies("web", 80, vec![]).unwrap();
    s.delete_policy("web", "lb").unwrap();
    refused(&mut s, "PolicyNotFound", |s| s.delete_policy("web", "lb"));
}

#[test]
fn deleting_a_load_balancer_is_idempotent() {
    let mut s = state();
    s.delete_load_balancer("web").unwrap();
    s.delete_load_balancer("web").unwrap();
    assert!(s.load_balancers.is_empty());
    assert_eq!(
        s.load_balancer("web").unwrap_err().code(),
        "LoadBalancerNotFound"
    );
}

#[test]
fn attributes_are_validated() {
    let mut s = state();
    let attrs = Attributes {
        idle_timeout_secs: 5,
        ..Attributes::default()
    };
    s.set_attributes("web", attrs.clone()).unwrap();
    assert_eq!(s.load_balancer("web").unwrap().attributes, attrs);
    refused(&mut s, "ValidationError", |s| {
        s.set_attributes(
            "web",
            Attributes {
                idle_timeout_secs: 0,
                ..Attributes::default()
            },
        )
    });
}

#[test]
fn tags_placement_and_backend_policies() {
    let mut s = state();
    let tag = |k: &str, v: &str| Tag {
        key: k.into(),
        value: v.into(),
    };
    s.add_tags("web", &[tag("env", "prod"), tag("team", "a")])
        .unwrap();
    s.add_tags("web", &[tag("env", "dev")]).unwrap();
    assert_eq!(
        s.load_balancer("web").unwrap().tags,
        [tag("env", "dev"), tag("team", "a")]
    );
    refused(&mut s, "ValidationError", |s| {
        s.add_tags("web", &[tag("aws:x", "1")])
    });
    refused(&mut s, "ValidationError", |s| {
        s.add_tags("web", &[tag("", "1")])
    });
    let many: Vec<Tag> = (0..9).map(|i| tag(&format!("k{i}"), "v")).collect();
    refused(&mut s, "TooManyTags", |s| s.add_tags("web", &many));
    s.remove_tags("web", &["env".into(), "nope".into()])
        .unwrap();
    assert_eq!(s.load_balancer("web").unwrap().tags, [tag("team", "a")]);

    let placement = Placement {
        availability_zones: vec!["us-east-1a".into()],
        scheme: Some("internal".into()),
        ..Placement::default()
    };
    s.set_placement("web", placement.clone()).unwrap();
    assert_eq!(s.load_balancer("web").unwrap().placement, placement);
    refused(&mut s, "ValidationError", |s| {
        s.set_placement(
            "web",
            Placement {
                scheme: Some("public".into()),
                ..Placement::default()
            },
        )
    });

    let pk = Policy {
        name: "pk".into(),
        kind: PolicyKind::Other {
            type_name: "PublicKeyPolicyType".into(),
            attributes: vec![],
        },
    };
    s.create_policy("web", pk).unwrap();
    refused(&mut s, "PolicyNotFound", |s| {
        s.set_backend_policies("web", 443, vec!["x".into()])
    });
    s.set_backend_policies("web", 443, vec!["pk".into()])
        .unwrap();
    refused(&mut s, "InvalidConfigurationRequest", |s| {
        s.delete_policy("web", "pk")
    });
    s.set_backend_policies("web", 443, vec![]).unwrap();
    assert!(s.load_balancer("web").unwrap().backend_policies.is_empty());
    s.delete_policy("web", "pk").unwrap();
}

#[test]
fn certificates_rename_and_tag() {
    let mut s = state();
    s.add_certificate(cert("C2", "two")).unwrap();
    s.create_listeners("web", vec![https(443, "C1")]).unwrap();
    s.update_certificate("one", Some("uno"), Some("/prod/"))
        .unwrap();
    let c = s.certificate_by_name("uno").unwrap();
    assert_eq!((c.id.as_str(), c.path.as_str()), ("C1", "/prod/"));
    assert_eq!(
        s.load_balancer("web")
            .unwrap()
            .listener(443)
            .unwrap()
            .certificates,
        ["C1"],
        "listeners follow"
    );
    refused(&mut s, "EntityAlreadyExists", |s| {
        s.update_certificate("uno", Some("two"), None)
    });
    refused(&mut s, "CertificateNotFound", |s| {
        s.update_certificate("one", None, None)
    });
    refused(&mut s, "ValidationError", |s| {
        s.update_certificate("uno", None, Some("bad"))
    });
    let tag = |k: &str| Tag {
        key: k.into(),
        value: "v".into(),
    };
    s.tag_certificate("uno", &[tag("a"), tag("b")]).unwrap();
    s.untag_certificate("uno", &["a".into()]).unwrap();
    assert_eq!(s.certificate_by_name("uno").unwrap().tags, [tag("b")]);
    let many: Vec<Tag> = (0..50).map(|i| tag(&format!("k{i}"))).collect();
    refused(&mut s, "LimitExceeded", |s| s.tag_certificate("uno", &many));
}

#[test]
fn listeners_carry_several_certificates() {
    let mut s = state();
    s.add_certificate(cert("C2", "two")).unwrap();
    s.add_certificate(cert("C3", "three")).unwrap();
    s.create_listeners("web", vec![https(443, "C1")]).unwrap();
    let certs = |s: &State| {
        s.load_balancer("web")
            .unwrap()
            .listener(443)
            .unwrap()
            .certificates
            .clone()
    };
    let ids = |ids: &[&str]| ids.iter().map(|i| i.to_string()).collect::<Vec<_>>();

    s.add_listener_certificates("web", 443, &ids(&["C2", "C3", "C2"]))
        .unwrap();
    assert_eq!(certs(&s), ["C1", "C2", "C3"]);
    // Adding again (the default too) is idempotent and keeps the order.
    s.add_listener_certificates("web", 443, &ids(&["C3", "C1"]))
        .unwrap();
    assert_eq!(certs(&s), ["C1", "C2", "C3"]);
    // An identical listener is still the same listener with extra certificates.
    s.create_listeners("web", vec![https(443, "C1")]).unwrap();
    assert_eq!(certs(&s), ["C1", "C2", "C3"]);

    for (code, port, list) in [
        ("ListenerNotFound", 444, &["C2"][..]),
        ("InvalidConfigurationRequest", 80, &["C2"][..]),
        ("CertificateNotFound", 443, &["C2", "C9"][..]),
        ("ValidationError", 443, &[][..]),
    ] {
        refused(&mut s, code, |s| {
            s.add_listener_certificates("web", port, &ids(list))
        });
        refused(&mut s, code, |s| {
            s.remove_listener_certificates("web", port, &ids(list))
        });
    }
    refused(&mut s, "LoadBalancerNotFound", |s| {
        s.add_listener_certificates("nope", 443, &ids(&["C2"]))
    });
    refused(&mut s, "LoadBalancerNotFound", |s| {
        s.remove_listener_certificates("nope", 443, &ids(&["C2"]))
    });
    // The default is replaced, never removed, even alongside others.
    refused(&mut s, "InvalidConfigurationRequest", |s| {
        s.remove_listener_certificates("web", 443, &ids(&["C2", "C1"]))
    });

    // No certificate in the list can be deleted, wherever it stands.
    for name in ["one", "two", "three"] {
        refused(&mut s, "DeleteConflict", |s| s.delete_certificate(name));
    }

    s.remove_listener_certificates("web", 443, &ids(&["C2"]))
        .unwrap();
    assert_eq!(certs(&s), ["C1", "C3"]);
    // Removing one that is not there is a no-op.
    s.remove_listener_certificates("web", 443, &ids(&["C2"]))
        .unwrap();
    assert_eq!(certs(&s), ["C1", "C3"]);
    s.delete_certificate("two").unwrap();
    refused(&mut s, "DeleteConflict", |s| s.delete_certificate("three"));

    // The quota counts the whole list.
    for i in 0..MAX_CERTIFICATES_PER_LISTENER {
        s.add_certificate(cert(&format!("X{i}"), &format!("x{i}")))
            .unwrap();
    }
    let many: Vec<String> = (0..MAX_CERTIFICATES_PER_LISTENER - 2)
        .map(|i| format!("X{i}"))
        .collect();
    s.add_listener_certificates("web", 443, &many).unwrap();
    assert_eq!(certs(&s).len(), MAX_CERTIFICATES_PER_LISTENER);
    refused(&mut s, "LimitExceeded", |s| {
        s.add_listener_certificates("web", 443, &ids(&["X98"]))
    });
}
