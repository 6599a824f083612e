use super::*;

#[test]
fn parses_toml_and_json_alike() {
    let toml = r#"
        timezone = "Europe/Berlin"
        [job_defaults]
        misfire_grace_time = 30
        coalesce = false
        [jobstores.default]
        type = "memory"
        [executors.pool]
        type = "threadpool"
        max_workers = 20
    "#;
    let json = r#"{"timezone": "Europe/Berlin",
        "job_defaults": {"misfire_grace_time": 30, "coalesce": false},
        "jobstores": {"default": {"type": "memory"}},
        "executors": {"pool": {"type": "threadpool", "max_workers": 20}}}"#;
    let a = SchedulerConfig::from_toml(toml).unwrap();
    let b = SchedulerConfig::from_json(json).unwrap();
    assert_eq!(a, b);
    assert_eq!(a.timezone().unwrap(), Some(chrono_tz::Europe::Berlin));
    assert_eq!(
        a.job_defaults.misfire_grace_time,
        Some(Duration::from_secs(30))
    );
    assert_eq!(a.job_defaults.max_instances, 1);
    assert_eq!(a.executors["pool"].kind, "threadpool");
    assert_eq!(a.executors["pool"].options["max_workers"], 20);
}

#[test]
fn bad_documents_are_config_errors() {
    for text in [
        r#"{"timezone": 5}"#,
        r#"{"jobstores": {"default": {}}}"#,
        r#"{"unknown_key": 1}"#,
    ] {
        let err = SchedulerConfig::from_json(text).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Config, "{text}");
    }
    let cfg = SchedulerConfig::from_json(r#"{"timezone": "Mars/Olympus"}"#).unwrap();
    assert_eq!(cfg.timezone().unwrap_err().kind(), crate::ErrorKind::Config);
}

#[test]
fn retry_intervals_out_of_range_are_config_errors() {
    for secs in ["1e13", "0", "-1", "86401"] {
        let cfg = SchedulerConfig::from_json(&format!(r#"{{"jobstore_retry_interval": {secs}}}"#))
            .unwrap();
        let err = cfg.jobstore_retry_interval().unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Config, "{secs}");
    }
    let cfg = SchedulerConfig::from_json(r#"{"jobstore_retry_interval": 0.5}"#).unwrap();
    assert_eq!(
        cfg.jobstore_retry_interval().unwrap(),
        Some(Duration::from_millis(500))
    );
}

/// Applies `text` (JSON) to default settings.
fn applied(text: &str) -> Result<Settings> {
    let cfg = SchedulerConfig::from_json(text)?;
    let mut settings = Settings::default();
    let (mut stores, mut executors) = (Aliased::stores(), Aliased::executors());
    apply_document(
        &cfg,
        &Components::new(),
        &mut settings,
        &mut stores,
        &mut executors,
    )?;
    Ok(settings)
}

#[test]
fn loop_settings_and_the_job_timeout_come_from_the_document() {
    let settings = applied(
        r#"{"max_wait": 2.5, "jobstore_call_timeout": 30, "due_batch_size": 50,
            "job_defaults": {"timeout": 600}}"#,
    )
    .unwrap();
    assert_eq!(settings.max_wait, Duration::from_millis(2500));
    assert_eq!(settings.jobstore_call_timeout, Duration::from_secs(30));
    assert_eq!(settings.due_batch_size, 50);
    assert_eq!(
        settings.job_defaults.timeout,
        Some(Duration::from_secs(600))
    );
    for bad in [
        r#"{"max_wait": 0}"#,
        r#"{"jobstore_call_timeout": 1e13}"#,
        r#"{"due_batch_size": 0}"#,
        r#"{"job_defaults": {"timeout": 0}}"#,
    ] {
        let err = applied(bad).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Config, "{bad}");
    }
}

#[test]
fn cluster_settings_come_from_the_document() {
    let toml = r#"
        node_id = "worker-1"
        heartbeat_interval = 1.5
        node_timeout = 6
        claim_lease = 2
    "#;
    let json = r#"{"node_id": "worker-1", "heartbeat_interval": 1.5, "node_timeout": 6,
        "claim_lease": 2}"#;
    assert_eq!(
        SchedulerConfig::from_toml(toml).unwrap(),
        SchedulerConfig::from_json(json).unwrap()
    );
    let cluster = applied(json).unwrap().cluster;
    assert_eq!(&*cluster.node_id, "worker-1");
    assert_eq!(cluster.heartbeat_interval, Duration::from_millis(1500));
    assert_eq!(cluster.node_timeout, Duration::from_secs(6));
    assert_eq!(cluster.claim_lease, Duration::from_secs(2));
    // Unset keys keep what the builder had.
    let defaults = Settings::default().cluster;
    let kept = applied(r#"{"claim_lease": 1}"#).unwrap().cluster;
    assert_eq!(kept.node_timeout, defaults.node_timeout);
    assert_eq!(kept.heartbeat_interval, defaults.heartbeat_interval);
}

#[test]
fn bad_cluster_settings_are_config_errors_naming_the_key() {
    let long_id = "n".repeat(201);
    let long = format!(r#"{{"node_id": "{long_id}"}}"#);
    for (bad, key) in [
        (r#"{"node_id": ""}"#, "node_id"),
        (long.as_str(), "node_id"),
        (r#"{"heartbeat_interval": 0}"#, "heartbeat_interval"),
        (r#"{"heartbeat_interval": -1}"#, "heartbeat_interval"),
        (r#"{"node_timeout": 1e13}"#, "node_timeout"),
        (r#"{"claim_lease": 86401}"#, "claim_lease"),
        // Relations between keys: with the defaults (heartbeat 5 s, lease 5 s) ...
        (r#"{"node_timeout": 4}"#, "node_timeout"),
        (r#"{"claim_lease": 15}"#, "claim_lease"),
        (r#"{"heartbeat_interval": 20}"#, "heartbeat_interval"),
        (
            r#"{"heartbeat_interval": 1, "node_timeout": 3, "claim_lease": 3}"#,
            "claim_lease",
        ),
    ] {
        let err = applied(bad).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Config, "{bad}");
        assert!(err.to_string().contains(key), "{bad}: {err}");
    }
    for bad in [
        r#"{"node_id": 7}"#,
        r#"{"claim_lease": "5s"}"#,
        r#"{"node_timout": 5}"#,
    ] {
        let err = SchedulerConfig::from_json(bad).unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Config, "{bad}");
    }
}

#[test]
fn a_bad_document_changes_nothing() {
    let mut settings = Settings::default();
    let (mut stores, mut executors) = (Aliased::stores(), Aliased::executors());
    let before = settings.timezone;
    let cfg = SchedulerConfig::from_json(
        r#"{"timezone": "Asia/Tokyo", "job_defaults": {"max_instances": 0}}"#,
    )
    .unwrap();
    let err = apply_document(
        &cfg,
        &Components::new(),
        &mut settings,
        &mut stores,
        &mut executors,
    )
    .unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::Config);
    assert_eq!(settings.timezone, before);
}

#[test]
fn a_store_may_be_named_by_its_url_alone() {
    let components = model_components(&["model"]);
    let config = SchedulerConfig::from_toml(
        r#"
        [jobstores.default]
        url = "model://host/db"
        [jobstores.typed]
        type = "model"
        [executors.default]
        url = "model://host/db"
        "#,
    )
    .unwrap();
    let entry = &config.jobstores["default"];
    assert_eq!(entry.kind, "");
    let text = serde_json::to_string(entry).unwrap();
    assert_eq!(text, r#"{"url":"model://host/db"}"#);
    assert_eq!(
        &SchedulerConfig::from_json(&format!(r#"{{"jobstores": {{"d": {text}}}}}"#))
            .unwrap()
            .jobstores["d"],
        entry
    );
    for alias in ["default", "typed"] {
        let store = components
            .build_jobstore(alias, &config.jobstores[alias])
            .unwrap();
        assert!(store.capabilities().persistent, "{alias}");
    }
    // Executors have no URL schemes.
    let err = components
        .build_executor("default", &config.executors["default"])
        .unwrap_err();
    assert!(err.to_string().contains("names no type"), "{err}");
    let unserved = ComponentConfig {
        kind: String::new(),
        options: serde_json::from_str(r#"{"url": "ftp://secret@x"}"#).unwrap(),
    };
    let err = components.build_jobstore("ftp", &unserved).unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::Config);
    let text = err.to_string();
    assert!(
        text.starts_with("job store \"ftp\": ") && !text.contains("secret"),
        "{text}"
    );
    for bad in [
        r#"{"url": 5}"#,
        r#"{"type": "", "url": "model://x"}"#,
        r#"{"path": "x"}"#,
    ] {
        let doc = format!(r#"{{"jobstores": {{"default": {bad}}}}}"#);
        match SchedulerConfig::from_json(&doc) {
            Ok(config) => {
                let entry = &config.jobstores["default"];
                let err = components.build_jobstore("default", entry).unwrap_err();
                assert_eq!(err.kind(), crate::ErrorKind::Config, "{bad}");
            }
            Err(err) => assert_eq!(err.kind(), crate::ErrorKind::Config, "{bad}"),
        }
    }
}

#[test]
fn unknown_component_types_are_named() {
    let components = Components::new();
    let entry = ComponentConfig {
        kind: "zookeeper".into(),
        options: Default::default(),
    };
    let err = components.build_jobstore("zk", &entry).unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::Config);
    assert!(err.to_string().contains("\"zookeeper\""), "{err}");
}

/// A record store type over the model backend, `RecordMap`.
fn model_components(schemes: &[&str]) -> Components {
    let components = Components::new();
    components.register_record_store(
        "model",
        schemes,
        Arc::new(|options| {
            let _: serde_json::Map<String, serde_json::Value> = parse_options(options)?;
            Ok(Arc::new(crate::testkit::RecordMap::new()) as Arc<dyn DynRecordStore>)
        }),
    );
    components
}

#[test]
fn a_url_opens_the_records_of_the_type_serving_its_scheme() {
    let components = model_components(&["model", "Other"]);
    assert_eq!(components.record_schemes(), ["model", "other"]);
    for url in ["model://host/db", "MODEL+driver://x", "other:relative"] {
        let records = components.open_records(url, Default::default());
        assert!(records.is_ok(), "{url}");
    }
    // One registration gives the job level too.
    let entry = ComponentConfig {
        kind: "model".into(),
        options: Default::default(),
    };
    let store = components.build_jobstore("default", &entry).unwrap();
    assert!(store.capabilities().persistent && store.capabilities().cluster);
}

#[test]
fn an_unknown_scheme_is_a_config_error_listing_the_registered_ones() {
    let components = model_components(&["model", "other"]);
    for url in [
        "ftp://user:secret@example.com/",
        "user:secret@example.com",
        "no scheme at all",
        "9p://secret",
        ":secret",
    ] {
        let err = components
            .open_records(url, Default::default())
            .unwrap_err();
        assert_eq!(err.kind(), crate::ErrorKind::Config, "{url}");
        let text = err.to_string();
        assert!(text.contains("registered: model, other"), "{text}");
        assert!(!text.contains("secret"), "{text}");
    }
    let err = Components::new()
        .open_records("model://x", Default::default())
        .unwrap_err();
    assert!(err.to_string().contains("none is registered"), "{err}");
}

#[test]
fn the_url_is_given_once_and_the_factory_judges_the_options() {
    let components = Components::new();
    let seen = Arc::new(RwLock::new(None));
    let recorder = seen.clone();
    components.register_record_store(
        "model",
        &["model"],
        Arc::new(move |options| {
            *recorder.write().unwrap() = Some(options.clone());
            Err(Error::config("no option is good enough"))
        }),
    );
    let mut options = serde_json::Map::new();
    options.insert("tablename".into(), "jobs".into());
    let err = components
        .open_records("model://x", options.clone())
        .unwrap_err();
    assert_eq!(err.kind(), crate::ErrorKind::Config);
    assert!(
        err.to_string().contains("no option is good enough"),
        "{err}"
    );
    assert_eq!(
        seen.read().unwrap().clone(),
        Some(serde_json::json!({"tablename": "jobs", "url": "model://x"}))
    );
    options.insert("url".into(), "model://y".into());
    let err = components.open_records("model://x", options).unwrap_err();
    assert!(err.to_string().contains("given once"), "{err}");
}
