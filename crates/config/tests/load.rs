//! Loading: file, environment and flags override in that order; bad values name their key.

use figment::Jail;
use switchboard_config::*;

fn err(e: ConfigError) -> String {
    e.to_string()
}

#[test]
fn defaults_are_valid() {
    Jail::expect_with(|_| {
        let c = load(None, &Overrides::default()).map_err(err)?;
        assert_eq!(c, Config::default());
        Ok(())
    });
}

#[test]
fn environment_overrides_file_and_flags_override_environment() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "switchboard.toml",
            r#"
            [kafka]
            bootstrap_servers = "file:9092"
            properties = { "security.protocol" = "SASL_SSL", "sasl.mechanism" = "SCRAM-SHA-512", "sasl.username" = "sb", "sasl.password" = "s3cret" }
            [redis]
            url = "rediss://cache:6380"
            [log]
            format = "json"
            "#,
        )?;
        jail.set_env("SWITCHBOARD_KAFKA__BOOTSTRAP_SERVERS", "env:9092");
        jail.set_env("SWITCHBOARD_TOPICS__PARTITIONS", "24");
        let c = load(Some("switchboard.toml".as_ref()), &Overrides::default()).map_err(err)?;
        assert_eq!(c.kafka.bootstrap_servers, "env:9092");
        assert_eq!(c.kafka.properties["security.protocol"], "SASL_SSL");
        assert_eq!(c.redis.url, "rediss://cache:6380");
        assert_eq!(c.topics.partitions, 24);
        assert_eq!(c.log.format, LogFormat::Json);

        let flags = Overrides {
            kafka_bootstrap: Some("flag:9092".into()),
            ..Default::default()
        };
        let c = load(Some("switchboard.toml".as_ref()), &flags).map_err(err)?;
        assert_eq!(c.kafka.bootstrap_servers, "flag:9092");
        Ok(())
    });
}

#[test]
fn switchboard_variables_without_a_section_are_not_keys() {
    Jail::expect_with(|jail| {
        jail.set_env("SWITCHBOARD_CONFIG", "/etc/switchboard.toml");
        jail.set_env("SWITCHBOARD_TOOLS_DIR", "/tmp/tools");
        jail.set_env("SWITCHBOARD_REDIS__URL", "redis://env:6379");
        let c = load(None, &Overrides::default()).map_err(err)?;
        assert_eq!(c.redis.url, "redis://env:6379");
        Ok(())
    });
}

#[test]
fn an_unknown_key_is_named() {
    Jail::expect_with(|jail| {
        jail.create_file(
            "c.toml",
            "[redis]\nurl = \"redis://x:1\"\nurll = \"typo\"\n",
        )?;
        let e = load(Some("c.toml".as_ref()), &Overrides::default())
            .unwrap_err()
            .to_string();
        assert!(e.contains("urll"), "{e}");
        assert!(e.contains("redis"), "{e}");
        Ok(())
    });
}

#[test]
fn a_wrong_type_is_named_with_its_key() {
    Jail::expect_with(|jail| {
        jail.set_env("SWITCHBOARD_TOPICS__PARTITIONS", "many");
        let e = load(None, &Overrides::default()).unwrap_err().to_string();
        assert!(e.contains("topics.partitions"), "{e}");
        Ok(())
    });
}

#[test]
fn invalid_values_are_rejected_naming_the_key() {
    let cases: Vec<(fn(&mut Config), &str)> = vec![
        (|c| c.redis.url = "http://redis:6379".into(), "redis.url"),
        (
            |c| c.kafka.bootstrap_servers = String::new(),
            "kafka.bootstrap_servers",
        ),
        (
            |c| {
                c.kafka
                    .properties
                    .insert("security.protocol".into(), "TLS".into());
            },
            "security.protocol",
        ),
        (
            |c| {
                c.kafka
                    .properties
                    .insert("security.protocol".into(), "SASL_SSL".into());
            },
            "sasl.username",
        ),
        (
            |c| {
                c.kafka.properties.insert("group.id".into(), "x".into());
            },
            "group.id",
        ),
        (|c| c.topics.partitions = 0, "topics.partitions"),
        (
            |c| c.topics.json_channels = vec!["fax".into()],
            "topics.json_channels",
        ),
        (
            |c| c.admin.listen = "nine-four-six-four".into(),
            "admin.listen",
        ),
        (
            |c| c.redis.cluster_seeds = vec!["redis://a:1".into()],
            "redis.cluster_seeds",
        ),
        (
            |c| c.schemas.registry_url = Some("registry:8081".into()),
            "schemas.registry_url",
        ),
    ];
    for (break_it, key) in cases {
        let mut c = Config::default();
        break_it(&mut c);
        let e = c.validate().unwrap_err().to_string();
        assert!(e.contains(key), "expected `{key}` in: {e}");
    }
}

#[test]
fn the_example_config_in_deploy_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../deploy/switchboard.toml");
    Jail::expect_with(|_| {
        let c = load(Some(path.as_ref()), &Overrides::default()).map_err(err)?;
        assert!(c.redis.cluster);
        Ok(())
    });
}
