//! The deploy artifacts hold together: the Helm chart renders to valid Kubernetes objects (one
//! worker Deployment and one KEDA ScaledObject per stage, and a fixed-size receiver Deployment
//! behind the hospital-facing DICOM and STOW-RS ports), every metric the Grafana dashboard and
//! the alert rules query is one the workers export, and the compose pilot runs every stage and
//! the receivers.
//!
//! Chart tests run the real Helm engine: `helm` when it is on PATH (or named by `SPINESCREEN_HELM`),
//! otherwise `helm/helm_shim.py`, which calls Helm's Go engine from the `helm-python-sdk` wheel.
//! Schema validation uses `kubernetes-validate` (PyPI). Install both with
//! `pip install helm-python-sdk==0.2.2 kubernetes-validate==1.37.0`. Without them these tests fail,
//! unless `SPINESCREEN_SKIP_HELM=1` says to skip them.
// Test code: a failed unwrap is the failure report (rust-clippy #11119: helpers outside
// `#[test]` are not covered by clippy.toml).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use serde_yaml_ng::Value;
use spinescreen_proto::Stage;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

// ---------------------------------------------------------------------------------------------
// Paths and file loading
// ---------------------------------------------------------------------------------------------

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ sits in the repository root")
        .to_path_buf()
}

fn read(rel: &str) -> String {
    let path = repo().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

fn yaml(rel: &str) -> Value {
    let mut value: Value = serde_yaml_ng::from_str(&read(rel))
        .unwrap_or_else(|e| panic!("{rel} is not valid YAML: {e}"));
    value
        .apply_merge()
        .unwrap_or_else(|e| panic!("{rel}: YAML merge keys: {e}"));
    value
}

/// `value["a"]["b"]...` as a string, or None.
fn str_at<'a>(value: &'a Value, path: &[&str]) -> Option<&'a str> {
    path.iter()
        .try_fold(value, |v, key| v.get(*key))
        .and_then(Value::as_str)
}

fn at<'a>(value: &'a Value, path: &[&str]) -> &'a Value {
    path.iter()
        .fold(value, |v, key| v.get(*key).unwrap_or(&Value::Null))
}

fn seq(value: &Value) -> &[Value] {
    value.as_sequence().map(Vec::as_slice).unwrap_or(&[])
}

fn stage_names() -> Vec<&'static str> {
    Stage::ALL.iter().map(|s| s.name()).collect()
}

/// `spinescreen worker receiver`: the DICOM receivers, deployed beside the stages.
const RECEIVER: &str = "receiver";

/// Every `spinescreen worker …` the chart and the pilot run: the stages, then the receivers.
fn worker_names() -> Vec<&'static str> {
    let mut names = stage_names();
    names.push(RECEIVER);
    names
}

/// Container ports (or Service ports) by name.
fn named_ports<'a>(ports: &'a Value, field: &str) -> BTreeMap<&'a str, u64> {
    seq(ports)
        .iter()
        .map(|p| {
            (
                str_at(p, &["name"]).unwrap_or(""),
                p[field].as_u64().unwrap_or(0),
            )
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Helm
// ---------------------------------------------------------------------------------------------

const CHART: &str = "helm/spinescreen";
const RELEASE: &str = "screen";
const NAMESPACE: &str = "radiology";

/// Values every chart test starts from: the external broker and store.
const BASE_VALUES: &str = r#"
broker:
  url: "amqp://spinescreen:s3cret@rabbitmq.messaging.svc:5672/%2f"
store:
  endpoint: "https://s3.hospital.example"
  accessKey: "AKIAEXAMPLE"
  secretKey: "secret-example"
ingest:
  bearerToken: "stow-token"
"#;

const INSTALL_HINT: &str = "install the chart tools with \
    `pip install helm-python-sdk==0.2.2 kubernetes-validate==1.37.0` (or put `helm` on PATH), \
    or set SPINESCREEN_SKIP_HELM=1 to skip the chart tests";

fn command_works(program: &str, args: &[&str]) -> bool {
    Command::new(program)
        .args(args)
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The command that runs `helm` subcommands, or None when the tests are told to skip.
fn helm() -> Option<Vec<String>> {
    if let Ok(helm) = std::env::var("SPINESCREEN_HELM") {
        return Some(vec![helm]);
    }
    if command_works("helm", &["version", "--short"]) {
        return Some(vec!["helm".into()]);
    }
    if command_works("python3", &["-c", "import helm_python"]) {
        let shim = repo().join("helm/helm_shim.py");
        return Some(vec!["python3".into(), shim.display().to_string()]);
    }
    skip_or_fail("neither `helm` nor the Python package helm-python-sdk is available")
}

fn skip_or_fail(what: &str) -> Option<Vec<String>> {
    if std::env::var("SPINESCREEN_SKIP_HELM").as_deref() == Ok("1") {
        eprintln!("SKIPPED (SPINESCREEN_SKIP_HELM=1): {what}");
        None
    } else {
        panic!("{what}: {INSTALL_HINT}");
    }
}

fn values_file(values: &[&str]) -> Vec<tempfile::NamedTempFile> {
    values
        .iter()
        .map(|text| {
            let mut file = tempfile::Builder::new()
                .suffix(".yaml")
                .tempfile()
                .expect("temp file");
            file.write_all(text.as_bytes()).expect("write values");
            file
        })
        .collect()
}

/// Runs `helm <args> [-f values]...`; Ok(stdout) or Err(stdout + stderr).
fn run_helm(helm: &[String], args: &[&str], values: &[&str]) -> Result<String, String> {
    let files = values_file(values);
    let mut cmd = Command::new(&helm[0]);
    cmd.args(&helm[1..]).args(args).current_dir(repo());
    for f in &files {
        cmd.arg("-f").arg(f.path());
    }
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("running {helm:?}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.success() {
        Ok(stdout)
    } else {
        Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)))
    }
}

/// `helm template` with the given values files (applied in order), as raw YAML.
fn template(helm: &[String], values: &[&str]) -> Result<String, String> {
    run_helm(
        helm,
        &["template", RELEASE, CHART, "--namespace", NAMESPACE],
        values,
    )
}

/// Every non-empty document of a YAML stream.
fn documents(stream: &str) -> Vec<Value> {
    serde_yaml_ng::Deserializer::from_str(stream)
        .map(|doc| {
            <Value as serde::Deserialize>::deserialize(doc)
                .unwrap_or_else(|e| panic!("rendered chart is not valid YAML: {e}\n{stream}"))
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// Renders with BASE_VALUES plus `extra`, panicking with helm's message on failure.
fn render(helm: &[String], extra: &[&str]) -> Vec<Value> {
    let mut values = vec![BASE_VALUES];
    values.extend_from_slice(extra);
    let out = template(helm, &values).unwrap_or_else(|e| panic!("helm template failed:\n{e}"));
    let docs = documents(&out);
    for doc in &docs {
        check_object_shape(doc);
    }
    docs
}

fn kind_of(doc: &Value) -> &str {
    str_at(doc, &["kind"]).unwrap_or("")
}

fn name_of(doc: &Value) -> &str {
    str_at(doc, &["metadata", "name"]).unwrap_or("")
}

fn of_kind<'a>(docs: &'a [Value], kind: &str) -> Vec<&'a Value> {
    docs.iter().filter(|d| kind_of(d) == kind).collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> Option<&'a Value> {
    docs.iter()
        .find(|d| kind_of(d) == kind && name_of(d) == name)
}

/// Fields every Kubernetes object needs, with valid names.
fn check_object_shape(doc: &Value) {
    let api = str_at(doc, &["apiVersion"]).unwrap_or_default();
    let kind = kind_of(doc);
    let name = name_of(doc);
    assert!(!api.is_empty(), "object without apiVersion: {doc:?}");
    assert!(!kind.is_empty(), "object without kind: {doc:?}");
    assert!(
        is_dns1123_label(name),
        "{kind} name {name:?} is not a DNS-1123 label"
    );
    assert_eq!(
        str_at(doc, &["metadata", "namespace"]),
        Some(NAMESPACE),
        "{kind}/{name} is not in the release namespace"
    );
    if let Some(labels) = at(doc, &["metadata", "labels"]).as_mapping() {
        for (k, v) in labels {
            let v = v
                .as_str()
                .unwrap_or_else(|| panic!("{kind}/{name}: label {k:?} not a string"));
            assert!(v.len() <= 63, "{kind}/{name}: label value {v:?} too long");
        }
    }
}

fn is_dns1123_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// Kubernetes quantity to MiB (memory) for the sizes the chart uses.
fn mib(quantity: &str) -> f64 {
    let (num, factor) = if let Some(n) = quantity.strip_suffix("Gi") {
        (n, 1024.0)
    } else if let Some(n) = quantity.strip_suffix("Mi") {
        (n, 1.0)
    } else if let Some(n) = quantity.strip_suffix("Ki") {
        (n, 1.0 / 1024.0)
    } else {
        (quantity, 1.0 / (1024.0 * 1024.0))
    };
    num.parse::<f64>()
        .unwrap_or_else(|e| panic!("memory quantity {quantity:?}: {e}"))
        * factor
}

/// Kubernetes quantity to cores.
fn cores(quantity: &str) -> f64 {
    match quantity.strip_suffix('m') {
        Some(milli) => milli.parse::<f64>().expect("millicores") / 1000.0,
        None => quantity.parse::<f64>().expect("cores"),
    }
}

fn quantity(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        other => panic!("quantity {other:?}"),
    }
}

fn labels_match(selector: &Value, labels: &Value) -> bool {
    selector
        .as_mapping()
        .map(|m| m.iter().all(|(k, v)| labels.get(k) == Some(v)))
        .unwrap_or(false)
}

fn rendered_config(docs: &[Value]) -> toml::Table {
    let cm = find(docs, "ConfigMap", &format!("{RELEASE}-spinescreen-config"))
        .expect("config ConfigMap rendered");
    let text = str_at(cm, &["data", "config.toml"]).expect("config.toml key");
    text.parse::<toml::Table>()
        .unwrap_or_else(|e| panic!("rendered config.toml is not TOML: {e}\n{text}"))
}

#[test]
fn chart_renders_a_probed_sized_deployment_per_stage_and_for_the_receivers() {
    let Some(helm) = helm() else { return };
    let docs = render(&helm, &[]);
    let deployments = of_kind(&docs, "Deployment");
    assert_eq!(
        deployments.len(),
        Stage::ALL.len() + 1,
        "one Deployment per stage and one for the receivers"
    );
    let secret = find(&docs, "Secret", &format!("{RELEASE}-spinescreen-secrets"))
        .expect("release Secret rendered");
    let cm_name = format!("{RELEASE}-spinescreen-config");

    for stage in worker_names() {
        let name = format!("{RELEASE}-spinescreen-{stage}");
        let dep =
            find(&docs, "Deployment", &name).unwrap_or_else(|| panic!("no Deployment {name}"));
        let pod = at(dep, &["spec", "template"]);
        assert!(
            labels_match(
                at(dep, &["spec", "selector", "matchLabels"]),
                at(pod, &["metadata", "labels"])
            ),
            "{name}: selector does not select its own pods"
        );
        let containers = seq(at(pod, &["spec", "containers"]));
        assert_eq!(containers.len(), 1, "{name}: one container");
        let c = &containers[0];
        let image = str_at(c, &["image"]).unwrap_or_default();
        assert!(
            image.contains(':') && !image.ends_with(':'),
            "{name}: image {image:?} has no tag"
        );
        let args: Vec<&str> = seq(&c["args"]).iter().filter_map(Value::as_str).collect();
        assert_eq!(
            args,
            ["worker", stage],
            "{name}: runs `spinescreen worker {stage}`"
        );

        for (probe, path) in [
            ("livenessProbe", "/healthz"),
            ("readinessProbe", "/readyz"),
            ("startupProbe", "/healthz"),
        ] {
            assert_eq!(
                str_at(c, &[probe, "httpGet", "path"]),
                Some(path),
                "{name} {probe}"
            );
            assert_eq!(
                str_at(c, &[probe, "httpGet", "port"]),
                Some("metrics"),
                "{name} {probe}"
            );
        }
        // The hospital-facing ports are the receivers' alone: ingest scales on its queue.
        let mut want = BTreeMap::from([("metrics", 9464)]);
        if stage == RECEIVER {
            want.extend([("dicom", 11112), ("stow", 8042)]);
        }
        assert_eq!(
            named_ports(&c["ports"], "containerPort"),
            want,
            "{name}: ports"
        );

        for kind in ["requests", "limits"] {
            for res in ["cpu", "memory"] {
                assert!(
                    !at(c, &["resources", kind, res]).is_null(),
                    "{name}: resources.{kind}.{res} missing"
                );
            }
        }
        let req_mem = mib(&quantity(at(c, &["resources", "requests", "memory"])));
        let lim_mem = mib(&quantity(at(c, &["resources", "limits", "memory"])));
        let req_cpu = cores(&quantity(at(c, &["resources", "requests", "cpu"])));
        let lim_cpu = cores(&quantity(at(c, &["resources", "limits", "cpu"])));
        assert!(
            req_mem <= lim_mem && req_cpu <= lim_cpu,
            "{name}: requests exceed limits"
        );
        if stage == "inference" {
            // 512 x 512 x 400 i16 = 200 MiB raw; the stage peaks at about twice that.
            assert!(
                (400.0..=600.0).contains(&req_mem),
                "inference memory request {req_mem} MiB is not ~2x the 200 MiB raw volume"
            );
            assert!(
                lim_mem <= 1024.0,
                "inference memory limit {lim_mem} MiB is oversized"
            );
        }

        // Config from the ConfigMap, secrets from keys that exist in the Secret.
        let env = seq(&c["env"]);
        let config_env = env
            .iter()
            .find(|e| str_at(e, &["name"]) == Some("SPINESCREEN_CONFIG"))
            .and_then(|e| str_at(e, &["value"]))
            .unwrap_or_else(|| panic!("{name}: SPINESCREEN_CONFIG not set"));
        let mount = seq(&c["volumeMounts"])
            .iter()
            .find(|m| str_at(m, &["name"]) == Some("config"))
            .and_then(|m| str_at(m, &["mountPath"]))
            .expect("config volume mounted");
        assert_eq!(
            config_env,
            format!("{mount}/config.toml"),
            "{name}: config path"
        );
        let config_volume = seq(at(pod, &["spec", "volumes"]))
            .iter()
            .find(|v| str_at(v, &["name"]) == Some("config"))
            .and_then(|v| str_at(v, &["configMap", "name"]));
        assert_eq!(
            config_volume,
            Some(cm_name.as_str()),
            "{name}: config volume"
        );
        let mut secret_keys = BTreeSet::new();
        for e in env {
            if let Some(key) = str_at(e, &["valueFrom", "secretKeyRef", "key"]) {
                assert_eq!(
                    str_at(e, &["valueFrom", "secretKeyRef", "name"]),
                    Some(name_of(secret)),
                    "{name}: env from another Secret"
                );
                let optional = at(e, &["valueFrom", "secretKeyRef", "optional"]).as_bool();
                assert!(
                    !at(secret, &["stringData", key]).is_null() || optional == Some(true),
                    "{name}: Secret has no key {key}"
                );
                secret_keys.insert(key);
            }
        }
        assert!(secret_keys.contains("broker-url"), "{name}: no broker URL");
        assert!(
            secret_keys.contains("s3-secret-key"),
            "{name}: no S3 secret key"
        );
        assert_eq!(
            secret_keys.contains("stow-bearer-token"),
            stage == RECEIVER,
            "{name}: only the receivers need the STOW-RS token"
        );

        let sc = at(c, &["securityContext"]);
        assert_eq!(
            sc["allowPrivilegeEscalation"].as_bool(),
            Some(false),
            "{name}"
        );
        assert_eq!(
            at(pod, &["spec", "securityContext", "runAsNonRoot"]).as_bool(),
            Some(true),
            "{name}: pods run as non-root"
        );
    }
}

#[test]
fn chart_exposes_dicom_and_stow_on_the_receivers_only_and_every_metrics_port() {
    let Some(helm) = helm() else { return };
    let docs = render(&helm, &[]);
    for stage in worker_names() {
        let name = format!("{RELEASE}-spinescreen-{stage}");
        let svc = find(&docs, "Service", &name).unwrap_or_else(|| panic!("no Service {name}"));
        let dep = find(&docs, "Deployment", &name).expect("deployment");
        assert!(
            labels_match(
                at(svc, &["spec", "selector"]),
                at(dep, &["spec", "template", "metadata", "labels"])
            ),
            "Service {name} does not select its own pods"
        );
        let mut want = BTreeMap::from([("metrics", 9464)]);
        if stage == RECEIVER {
            want.extend([("dicom", 11112), ("stow", 8042)]);
        }
        assert_eq!(
            named_ports(at(svc, &["spec", "ports"]), "port"),
            want,
            "Service {name} ports"
        );
    }
    // No Service routes DICOM or STOW-RS to any pod but the receivers'.
    let receiver = find(
        &docs,
        "Deployment",
        &format!("{RELEASE}-spinescreen-{RECEIVER}"),
    )
    .expect("receiver deployment");
    for svc in of_kind(&docs, "Service") {
        let ports = named_ports(at(svc, &["spec", "ports"]), "port");
        if ports.contains_key("dicom") || ports.contains_key("stow") {
            for dep in of_kind(&docs, "Deployment") {
                let selects = labels_match(
                    at(svc, &["spec", "selector"]),
                    at(dep, &["spec", "template", "metadata", "labels"]),
                );
                assert_eq!(
                    selects,
                    name_of(dep) == name_of(receiver),
                    "Service {} and Deployment {}",
                    name_of(svc),
                    name_of(dep)
                );
            }
        }
    }
    // The Service type and annotations for reaching it from the PACS.
    let docs = render(
        &helm,
        &["receiver: {service: {type: LoadBalancer, annotations: {lb.example/internal: \"true\"}}}\n"],
    );
    let svc = find(
        &docs,
        "Service",
        &format!("{RELEASE}-spinescreen-{RECEIVER}"),
    )
    .expect("receiver Service");
    assert_eq!(str_at(svc, &["spec", "type"]), Some("LoadBalancer"));
    assert_eq!(
        str_at(svc, &["metadata", "annotations", "lb.example/internal"]),
        Some("true")
    );
    let ingest = find(&docs, "Service", &format!("{RELEASE}-spinescreen-ingest")).expect("ingest");
    assert_eq!(str_at(ingest, &["spec", "type"]), Some("ClusterIP"));
}

#[test]
fn chart_scales_every_stage_on_its_rabbitmq_queue_with_keda() {
    let Some(helm) = helm() else { return };
    let docs = render(&helm, &[]);
    let secret = find(&docs, "Secret", &format!("{RELEASE}-spinescreen-secrets")).expect("Secret");
    let objects = of_kind(&docs, "ScaledObject");
    assert_eq!(
        objects.len(),
        Stage::ALL.len(),
        "one ScaledObject per queue"
    );
    for stage in Stage::ALL {
        let so = objects
            .iter()
            .find(|so| {
                seq(at(so, &["spec", "triggers"]))
                    .iter()
                    .any(|t| str_at(t, &["metadata", "queueName"]) == Some(stage.queue()))
            })
            .unwrap_or_else(|| panic!("no ScaledObject on {}", stage.queue()));
        assert_eq!(str_at(so, &["apiVersion"]), Some("keda.sh/v1alpha1"));
        let target = str_at(so, &["spec", "scaleTargetRef", "name"]).expect("scaleTargetRef.name");
        let dep = find(&docs, "Deployment", target)
            .unwrap_or_else(|| panic!("ScaledObject targets missing Deployment {target}"));
        let args: Vec<&str> = seq(at(dep, &["spec", "template", "spec", "containers"]))[0]["args"]
            .as_sequence()
            .expect("args")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(
            args,
            ["worker", stage.name()],
            "{target} consumes {}",
            stage.queue()
        );
        assert!(
            at(dep, &["spec", "replicas"]).is_null(),
            "{target}: a fixed replica count would fight the KEDA HPA"
        );
        let trigger = &seq(at(so, &["spec", "triggers"]))[0];
        assert_eq!(str_at(trigger, &["type"]), Some("rabbitmq"));
        assert_eq!(str_at(trigger, &["metadata", "mode"]), Some("QueueLength"));
        let value: u32 = str_at(trigger, &["metadata", "value"])
            .expect("metadata.value is a string")
            .parse()
            .expect("queue length is an integer");
        assert!(value > 0);
        let min = at(so, &["spec", "minReplicaCount"])
            .as_u64()
            .expect("minReplicaCount");
        let max = at(so, &["spec", "maxReplicaCount"])
            .as_u64()
            .expect("maxReplicaCount");
        assert!(
            min >= 1,
            "{target}: scaling to zero would leave the queue without a consumer"
        );
        assert!(max >= min);
        if stage == Stage::Inference || stage == Stage::Ingest {
            assert!(max > min, "{target} must scale out on backlog");
        }
        let auth_name = str_at(trigger, &["authenticationRef", "name"]).expect("authenticationRef");
        let auth = find(&docs, "TriggerAuthentication", auth_name)
            .unwrap_or_else(|| panic!("TriggerAuthentication {auth_name} not rendered"));
        let host = seq(at(auth, &["spec", "secretTargetRef"]))
            .iter()
            .find(|r| str_at(r, &["parameter"]) == Some("host"))
            .expect("host parameter from the Secret");
        assert_eq!(str_at(host, &["name"]), Some(name_of(secret)));
        let key = str_at(host, &["key"]).expect("key");
        assert!(str_at(secret, &["stringData", key])
            .expect("Secret key exists")
            .starts_with("amqp://"));
    }
    // The receivers keep their fixed replica count: KEDA never opens or closes their ports.
    let receiver = format!("{RELEASE}-spinescreen-{RECEIVER}");
    for so in &objects {
        assert_ne!(
            str_at(so, &["spec", "scaleTargetRef", "name"]),
            Some(receiver.as_str()),
            "KEDA scales the receivers"
        );
    }
    let dep = find(&docs, "Deployment", &receiver).expect("receiver deployment");
    assert_eq!(at(dep, &["spec", "replicas"]).as_u64(), Some(2));
}

#[test]
fn chart_guards_each_stage_and_the_receivers_with_a_disruption_budget() {
    let Some(helm) = helm() else { return };
    let docs = render(&helm, &[]);
    for stage in worker_names() {
        let name = format!("{RELEASE}-spinescreen-{stage}");
        let pdb = find(&docs, "PodDisruptionBudget", &name)
            .unwrap_or_else(|| panic!("no PodDisruptionBudget {name}"));
        let dep = find(&docs, "Deployment", &name).expect("deployment");
        assert!(labels_match(
            at(pdb, &["spec", "selector", "matchLabels"]),
            at(dep, &["spec", "template", "metadata", "labels"])
        ));
    }
}

/// The environment a rendered container gets: literal values, and keys of `secret` (a key the
/// Secret lacks is left out, as Kubernetes does for `optional: true`).
fn container_env(container: &Value, secret: &Value) -> Vec<(String, String)> {
    let mut env = Vec::new();
    for e in seq(&container["env"]) {
        let name = str_at(e, &["name"]).expect("env name").to_string();
        if let Some(v) = str_at(e, &["value"]) {
            env.push((name, v.to_string()));
        } else if let Some(key) = str_at(e, &["valueFrom", "secretKeyRef", "key"]) {
            match str_at(secret, &["stringData", key]) {
                Some(v) => env.push((name, v.to_string())),
                None => assert_eq!(
                    at(e, &["valueFrom", "secretKeyRef", "optional"]).as_bool(),
                    Some(true),
                    "{name}: Secret lacks required key {key}"
                ),
            }
        }
    }
    env
}

/// A config file plus `SPINESCREEN__*` variables, read by the runtime's own loader.
fn load_config(text: &str, env: Vec<(String, String)>) -> toml::Value {
    let mut file = tempfile::Builder::new()
        .suffix(".toml")
        .tempfile()
        .expect("temp file");
    file.write_all(text.as_bytes()).expect("write config");
    spinescreen_runtime::config::load_config_value_with(Some(file.path()), env)
        .unwrap_or_else(|e| panic!("the runtime cannot read this config: {e:#}\n{text}"))
}

/// The whole process configuration, as the `spinescreen` binary builds it from the file and the
/// environment: runtime keys plus every stage's own config type.
fn app_config(config: &toml::Value) -> spinescreen::config::AppConfig {
    spinescreen::config::AppConfig::from_value(config)
        .unwrap_or_else(|e| panic!("the binary rejects this configuration: {e:#}"))
}

#[test]
fn chart_config_and_secrets_load_into_every_stage_config() {
    use spinescreen_publisher::Destination;
    use spinescreen_runtime::{BrokerConfig, StoreConfig};
    let Some(helm) = helm() else { return };
    let docs = render(
        &helm,
        &[r#"
language: ru
serviceName: spinescreen-city
publisher:
  destinations:
    - { kind: cstore, host: pacs.hospital.example, port: 104, called_ae: PACS, calling_ae: SPINESCREEN }
extraConfig:
  inference: { detector: classical }
  publisher: { institution_name: "City Hospital 1" }
"#],
    );
    let cm = find(&docs, "ConfigMap", &format!("{RELEASE}-spinescreen-config")).expect("ConfigMap");
    let text = str_at(cm, &["data", "config.toml"]).expect("config.toml");
    for secret in ["s3cret", "secret-example", "stow-token"] {
        assert!(!text.contains(secret), "a secret leaked into the ConfigMap");
    }
    let secret = find(&docs, "Secret", &format!("{RELEASE}-spinescreen-secrets")).expect("Secret");

    for stage in worker_names() {
        let dep = find(
            &docs,
            "Deployment",
            &format!("{RELEASE}-spinescreen-{stage}"),
        )
        .expect("dep");
        let container = &seq(at(dep, &["spec", "template", "spec", "containers"]))[0];
        let config = load_config(text, container_env(container, secret));

        let app = app_config(&config);
        let runtime = &app.runtime;
        assert_eq!(runtime.service_name, "spinescreen-city");
        assert_eq!(
            runtime.metrics_addr.to_string(),
            "0.0.0.0:9464",
            "{stage}: reachable metrics"
        );
        let grace = at(
            dep,
            &["spec", "template", "spec", "terminationGracePeriodSeconds"],
        )
        .as_u64()
        .expect("grace period");
        assert!(
            runtime.shutdown_grace_secs < grace,
            "{stage}: Kubernetes kills the pod before the worker gives up its job"
        );
        match &runtime.broker {
            BrokerConfig::Amqp { url, .. } => {
                assert_eq!(
                    url,
                    "amqp://spinescreen:s3cret@rabbitmq.messaging.svc:5672/%2f"
                )
            }
            other => panic!("{stage}: broker {other:?}, not RabbitMQ"),
        }
        match &runtime.store {
            StoreConfig::S3 {
                endpoint,
                access_key,
                secret_key,
                ..
            } => {
                assert_eq!(endpoint, "https://s3.hospital.example");
                assert_eq!(access_key, "AKIAEXAMPLE");
                assert_eq!(secret_key, "secret-example");
            }
            other => panic!("{stage}: store {other:?}, not S3"),
        }

        let ingest = &app.ingest;
        assert_eq!((ingest.scp.port, ingest.stow.port), (11112, 8042));
        assert_eq!(
            ingest.stow.bearer_token.as_deref(),
            (stage == RECEIVER).then_some("stow-token"),
            "{stage}: only the receivers get the STOW-RS token"
        );
        let inference = &app.inference;
        assert_eq!(inference.detector, "classical");
        let rendering = &app.rendering;
        assert_eq!(rendering.language, spinescreen_rendering::Language::Ru);
        let publisher = &app.publisher;
        assert_eq!(publisher.language, spinescreen_publisher::Language::Ru);
        assert_eq!(
            publisher.institution_name.as_deref(),
            Some("City Hospital 1")
        );
        assert_eq!(
            publisher.destinations,
            [Destination::Cstore {
                host: "pacs.hospital.example".into(),
                port: 104,
                called_ae: "PACS".into(),
                calling_ae: "SPINESCREEN".into(),
            }]
        );
    }
}

#[test]
fn chart_without_stow_token_leaves_stow_unauthenticated_rather_than_empty() {
    let Some(helm) = helm() else { return };
    let docs = render(&helm, &["ingest: {bearerToken: \"\"}\n"]);
    let secret = find(&docs, "Secret", &format!("{RELEASE}-spinescreen-secrets")).expect("Secret");
    assert!(at(secret, &["stringData", "stow-bearer-token"]).is_null());
    let cm = find(&docs, "ConfigMap", &format!("{RELEASE}-spinescreen-config")).expect("ConfigMap");
    let dep = find(
        &docs,
        "Deployment",
        &format!("{RELEASE}-spinescreen-{RECEIVER}"),
    )
    .expect("receiver");
    let container = &seq(at(dep, &["spec", "template", "spec", "containers"]))[0];
    let config = load_config(
        str_at(cm, &["data", "config.toml"]).expect("config.toml"),
        container_env(container, secret),
    );
    assert_eq!(app_config(&config).ingest.stow.bearer_token, None);
}

#[test]
fn chart_refuses_to_render_without_broker_or_with_bad_values() {
    let Some(helm) = helm() else { return };
    let err = template(&helm, &[]).expect_err("defaults have no broker URL");
    assert!(
        err.contains("broker.url is required"),
        "unexpected error: {err}"
    );
    let err = template(&helm, &[BASE_VALUES, "language: de\n"]).expect_err("language de");
    assert!(
        err.contains("language") && err.contains("'ru'"),
        "unexpected error: {err}"
    );
    let segmentation =
        "stages:\n  segmentation:\n    resources: {requests: {cpu: 1, memory: 1Gi}, \
        limits: {cpu: 1, memory: 1Gi}}\n    autoscaling: {enabled: false}\n";
    let err = template(&helm, &[BASE_VALUES, segmentation]).expect_err("unknown stage");
    assert!(err.contains("segmentation"), "unexpected error: {err}");
    let err = template(
        &helm,
        &[
            BASE_VALUES,
            "stages: {inference: {resources: {limits: {memory: 1GB}}}}\n",
        ],
    )
    .expect_err("memory in GB");
    assert!(err.contains("memory"), "unexpected error: {err}");
    let err = template(
        &helm,
        &[BASE_VALUES, "extraConfig: {inference: {nested: {a: 1}}}\n"],
    )
    .expect_err("nested extra config");
    assert!(err.contains("nested"), "unexpected error: {err}");
    // The receivers are not a stage and are never autoscaled; their Service moved off ingest.
    let err = template(
        &helm,
        &[
            BASE_VALUES,
            "stages:\n  receiver:\n    resources: {requests: {cpu: 1, memory: 1Gi}, \
             limits: {cpu: 1, memory: 1Gi}}\n    autoscaling: {enabled: true}\n",
        ],
    )
    .expect_err("receiver as a stage");
    assert!(err.contains("receiver"), "unexpected error: {err}");
    let err = template(
        &helm,
        &[BASE_VALUES, "receiver: {autoscaling: {enabled: true}}\n"],
    )
    .expect_err("autoscaled receivers");
    assert!(err.contains("autoscaling"), "unexpected error: {err}");
    let err = template(
        &helm,
        &[BASE_VALUES, "ingest: {service: {type: LoadBalancer}}\n"],
    )
    .expect_err("ingest.service");
    assert!(
        err.contains("ingest.service moved to receiver.service"),
        "unexpected error: {err}"
    );
}

#[test]
fn chart_uses_an_existing_secret_instead_of_rendering_one() {
    let Some(helm) = helm() else { return };
    let out = template(
        &helm,
        &["existingSecret: spinescreen-prod\nstore: {endpoint: \"https://s3.hospital.example\"}\n"],
    )
    .unwrap_or_else(|e| panic!("helm template failed:\n{e}"));
    let docs = documents(&out);
    assert!(
        of_kind(&docs, "Secret").is_empty(),
        "no Secret with existingSecret"
    );
    let mut refs = 0;
    for dep in of_kind(&docs, "Deployment") {
        for c in seq(at(dep, &["spec", "template", "spec", "containers"])) {
            for e in seq(&c["env"]) {
                if let Some(name) = str_at(e, &["valueFrom", "secretKeyRef", "name"]) {
                    assert_eq!(name, "spinescreen-prod");
                    refs += 1;
                }
            }
        }
    }
    assert!(
        refs >= 3 * worker_names().len(),
        "every worker takes its secrets from the Secret"
    );
    for auth in of_kind(&docs, "TriggerAuthentication") {
        for r in seq(at(auth, &["spec", "secretTargetRef"])) {
            assert_eq!(str_at(r, &["name"]), Some("spinescreen-prod"));
        }
    }
}

/// Values that switch the study ledger and its console on.
const LEDGER_VALUES: &str = r#"
ledger:
  enabled: true
  databaseUrl: "postgres://spinescreen:pg-secret@postgres.db.svc:5432/spinescreen"
  console:
    token: "console-secret"
"#;

#[test]
fn chart_runs_the_ledger_and_console_with_the_database_url_from_the_secret() {
    let Some(helm) = helm() else { return };
    // Off by default: nothing of the ledger in a plain release.
    let plain = render(&helm, &[]);
    assert!(find(
        &plain,
        "Deployment",
        &format!("{RELEASE}-spinescreen-ledger")
    )
    .is_none());

    let docs = render(&helm, &[LEDGER_VALUES]);
    let secret = find(&docs, "Secret", &format!("{RELEASE}-spinescreen-secrets")).expect("Secret");
    assert_eq!(
        str_at(secret, &["stringData", "database-url"]),
        Some("postgres://spinescreen:pg-secret@postgres.db.svc:5432/spinescreen")
    );
    assert_eq!(
        str_at(secret, &["stringData", "console-token"]),
        Some("console-secret")
    );
    let cm = find(&docs, "ConfigMap", &format!("{RELEASE}-spinescreen-config")).expect("ConfigMap");
    assert!(
        !str_at(cm, &["data", "config.toml"])
            .unwrap_or_default()
            .contains("pg-secret"),
        "the database password stays in the Secret"
    );
    for (component, args) in [
        ("ledger", vec!["worker", "ledger"]),
        ("console", vec!["console", "--listen", "0.0.0.0:8090"]),
    ] {
        let name = format!("{RELEASE}-spinescreen-{component}");
        let dep =
            find(&docs, "Deployment", &name).unwrap_or_else(|| panic!("no Deployment {name}"));
        let pod = at(dep, &["spec", "template"]);
        assert!(labels_match(
            at(dep, &["spec", "selector", "matchLabels"]),
            at(pod, &["metadata", "labels"])
        ));
        let c = &seq(at(pod, &["spec", "containers"]))[0];
        let got: Vec<&str> = seq(&c["args"]).iter().filter_map(Value::as_str).collect();
        assert_eq!(got, args, "{name}");
        let env = container_env(c, secret);
        let var = |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
        assert_eq!(
            var("DATABASE_URL"),
            Some("postgres://spinescreen:pg-secret@postgres.db.svc:5432/spinescreen"),
            "{name}: DATABASE_URL from the Secret"
        );
        let from_secret = seq(&c["env"])
            .iter()
            .find(|e| str_at(e, &["name"]) == Some("DATABASE_URL"))
            .and_then(|e| str_at(e, &["valueFrom", "secretKeyRef", "key"]));
        assert_eq!(
            from_secret,
            Some("database-url"),
            "{name}: a secretKeyRef, not a value"
        );
        assert!(
            c["readinessProbe"]["httpGet"]["path"].as_str().is_some(),
            "{name}: probed"
        );
        assert!(
            c["resources"]["limits"]["memory"].as_str().is_some(),
            "{name}: limited"
        );
        let svc = find(&docs, "Service", &name).unwrap_or_else(|| panic!("no Service {name}"));
        assert!(labels_match(
            at(svc, &["spec", "selector"]),
            at(pod, &["metadata", "labels"])
        ));
        // The whole config (file + environment) loads as the binary reads it.
        let config = app_config(&load_config(
            str_at(cm, &["data", "config.toml"]).unwrap(),
            env.clone(),
        ));
        if component == "console" {
            assert_eq!(var("SPINESCREEN_CONSOLE_TOKEN"), Some("console-secret"));
        } else {
            assert_eq!(
                at(svc, &["metadata", "labels", "prometheus-job"]).as_str(),
                Some("spinescreen-ledger")
            );
            let url = config
                .ledger
                .database_url_with(var("DATABASE_URL").map(str::to_string));
            assert!(url.is_ok());
        }
    }
    // Without a database URL the chart refuses to render.
    let err = template(
        &helm,
        &[
            BASE_VALUES,
            "ledger: {enabled: true, console: {token: t}}\n",
        ],
    )
    .expect_err("ledger without databaseUrl");
    assert!(err.contains("ledger.databaseUrl is required"), "{err}");
    let err = template(
        &helm,
        &[
            BASE_VALUES,
            "ledger: {enabled: true, databaseUrl: \"postgres://a/b\"}\n",
        ],
    )
    .expect_err("console without a token");
    assert!(err.contains("ledger.console.token is required"), "{err}");

    // The Kubernetes schemas accept the ledger's objects too.
    if command_works("kubernetes-validate", &["--version"]) {
        let out = template(&helm, &[BASE_VALUES, LEDGER_VALUES]).unwrap();
        let mut file = tempfile::Builder::new()
            .suffix(".yaml")
            .tempfile()
            .expect("temp");
        file.write_all(out.as_bytes()).expect("write");
        let res = Command::new("kubernetes-validate")
            .args(["-k", "1.30.0", "--strict", "--quiet", "--no-warn"])
            .arg(file.path())
            .output()
            .expect("kubernetes-validate runs");
        assert!(
            res.status.success(),
            "{}{}",
            String::from_utf8_lossy(&res.stdout),
            String::from_utf8_lossy(&res.stderr)
        );
    }
}

#[test]
fn chart_without_keda_keeps_fixed_replicas() {
    let Some(helm) = helm() else { return };
    let docs = render(
        &helm,
        &["keda: {enabled: false}\nstages: {inference: {replicas: 3}}\n"],
    );
    assert!(of_kind(&docs, "ScaledObject").is_empty());
    assert!(of_kind(&docs, "TriggerAuthentication").is_empty());
    let inference = find(
        &docs,
        "Deployment",
        &format!("{RELEASE}-spinescreen-inference"),
    )
    .expect("inference");
    assert_eq!(at(inference, &["spec", "replicas"]).as_u64(), Some(3));
    let receiver = find(
        &docs,
        "Deployment",
        &format!("{RELEASE}-spinescreen-{RECEIVER}"),
    )
    .expect("receiver");
    assert_eq!(at(receiver, &["spec", "replicas"]).as_u64(), Some(2));
}

#[test]
fn chart_monitoring_objects_use_the_pilot_job_names_and_alert_rules() {
    let Some(helm) = helm() else { return };
    let docs = render(
        &helm,
        &["serviceMonitor: {enabled: true}\nprometheusRule: {enabled: true}\n"],
    );
    let sm = &of_kind(&docs, "ServiceMonitor")[0];
    let job_label = str_at(sm, &["spec", "jobLabel"]).expect("jobLabel");
    assert_eq!(
        str_at(&seq(at(sm, &["spec", "endpoints"]))[0], &["port"]),
        Some("metrics")
    );
    for stage in worker_names() {
        let svc = find(&docs, "Service", &format!("{RELEASE}-spinescreen-{stage}")).expect("svc");
        assert!(labels_match(
            at(sm, &["spec", "selector", "matchLabels"]),
            at(svc, &["metadata", "labels"])
        ));
        // Same job label as deploy/prometheus.yml, so the alert rules work in both.
        assert_eq!(
            str_at(svc, &["metadata", "labels", job_label]),
            Some(format!("spinescreen-{stage}").as_str())
        );
    }
    let rule = &of_kind(&docs, "PrometheusRule")[0];
    assert_eq!(
        at(rule, &["spec", "groups"]),
        at(&yaml("deploy/alerts.yml"), &["groups"])
    );
}

#[test]
fn chart_passes_helm_lint_strict() {
    let Some(helm) = helm() else { return };
    let out = run_helm(&helm, &["lint", CHART, "--strict"], &[BASE_VALUES])
        .unwrap_or_else(|e| panic!("helm lint --strict failed:\n{e}"));
    assert!(!out.contains("[ERROR]"), "{out}");
}

#[test]
fn rendered_chart_validates_against_the_kubernetes_schemas() {
    let Some(helm) = helm() else { return };
    if !command_works("kubernetes-validate", &["--version"]) {
        skip_or_fail("kubernetes-validate is not installed");
        return;
    }
    let out = template(
        &helm,
        &[
            BASE_VALUES,
            "serviceMonitor: {enabled: true}\nprometheusRule: {enabled: true}\n",
        ],
    )
    .unwrap_or_else(|e| panic!("helm template failed:\n{e}"));
    let mut file = tempfile::Builder::new()
        .suffix(".yaml")
        .tempfile()
        .expect("temp");
    file.write_all(out.as_bytes()).expect("write");
    // 1.25 is the chart's kubeVersion floor; custom resources (KEDA, Prometheus Operator) have
    // no bundled schema and are checked field by field by the tests above.
    for version in ["1.25.0", "1.30.0"] {
        let res = Command::new("kubernetes-validate")
            .args(["-k", version, "--strict", "--quiet", "--no-warn"])
            .arg(file.path())
            .output()
            .expect("kubernetes-validate runs");
        assert!(
            res.status.success(),
            "rendered chart fails Kubernetes {version} schemas:\n{}{}",
            String::from_utf8_lossy(&res.stdout),
            String::from_utf8_lossy(&res.stderr)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Metrics: what the dashboard and alerts query vs what the workers export
// ---------------------------------------------------------------------------------------------

/// Series the workers export, by name, with their label names (from the real registry).
fn exported_series() -> BTreeMap<String, BTreeSet<String>> {
    use spinescreen_runtime::metrics as m;
    // Labelled families appear in /metrics only once a child exists; make one of each.
    m::STAGE_DURATION
        .with_label_values(&["inference"])
        .observe(0.5);
    m::JOBS.with_label_values(&["inference", "ok"]).inc();
    m::JOBS_IN_FLIGHT.with_label_values(&["inference"]).set(0);
    m::DELIVERIES.with_label_values(&["dicom", "ok"]).inc();
    m::observe_study("ok", 12.0);
    m::STATION_STUDIES_TODAY.with_label_values(&["CT-1"]).set(1);
    m::STATION_DEFECTS_TODAY
        .with_label_values(&["CT-1", "RING_ARTIFACTS", "true"])
        .set(1);
    let text = m::render();
    let mut series: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
    {
        let name_end = line.find(['{', ' ']).unwrap_or(line.len());
        let entry = series.entry(line[..name_end].to_string()).or_default();
        if line[name_end..].starts_with('{') {
            let labels = &line[name_end + 1..line.find('}').expect("closing brace")];
            for pair in labels.split(',').filter(|p| !p.is_empty()) {
                entry.insert(pair.split('=').next().unwrap_or_default().to_string());
            }
        }
    }
    series
}

/// Bucket bounds of the exported end-to-end latency histogram, as written in `le`.
fn exported_le_values() -> BTreeSet<String> {
    let text = spinescreen_runtime::metrics::render();
    text.lines()
        .filter(|l| l.starts_with("spinescreen_study_latency_seconds_bucket{"))
        .filter_map(|l| {
            l.split("le=\"")
                .nth(1)?
                .split('"')
                .next()
                .map(str::to_string)
        })
        .collect()
}

/// A bucket bound as Prometheus 3 stores it: classic-histogram `le` values are normalised to
/// floats, so a whole number gains `.0` (`390` → `390.0`); `+Inf` and fractions stay.
fn prometheus3_le(le: &str) -> String {
    if le.chars().all(|c| c.is_ascii_digit()) {
        format!("{le}.0")
    } else {
        le.to_string()
    }
}

/// The queue metrics of RabbitMQ's rabbitmq_prometheus plugin, per object (endpoint
/// /metrics/per-object), with their labels.
const RABBITMQ_QUEUE_METRICS: [&str; 4] = [
    "rabbitmq_queue_messages_ready",
    "rabbitmq_queue_messages_unacked",
    "rabbitmq_queue_messages",
    "rabbitmq_queue_consumers",
];

/// A metric selector in a PromQL expression: the metric name and its label matchers.
#[derive(Debug)]
struct MetricRef {
    name: String,
    labels: Vec<(String, String)>,
    /// The label matchers themselves (`=`, `!=`, `=~`, `!~`), to test values against.
    matchers: Vec<promql_parser::label::Matcher>,
}

/// Collects selectors and `by (...)`/`without (...)` labels from a parsed expression.
#[derive(Default)]
struct SelectorCollector {
    refs: Vec<MetricRef>,
    grouping: Vec<String>,
}

impl SelectorCollector {
    fn push(&mut self, vs: &promql_parser::parser::VectorSelector) {
        let matchers = &vs.matchers.matchers;
        let name = vs.name.clone().or_else(|| {
            matchers
                .iter()
                .find(|m| m.name == "__name__")
                .map(|m| m.value.clone())
        });
        self.refs.push(MetricRef {
            name: name.unwrap_or_default(),
            labels: matchers
                .iter()
                .filter(|m| m.name != "__name__")
                .map(|m| (m.name.clone(), m.value.clone()))
                .collect(),
            matchers: matchers
                .iter()
                .filter(|m| m.name != "__name__")
                .cloned()
                .collect(),
        });
    }
}

impl promql_parser::util::ExprVisitor for SelectorCollector {
    type Error = std::convert::Infallible;

    fn pre_visit(&mut self, expr: &promql_parser::parser::Expr) -> Result<bool, Self::Error> {
        use promql_parser::parser::Expr;
        match expr {
            Expr::VectorSelector(vs) => self.push(vs),
            Expr::MatrixSelector(ms) => self.push(&ms.vs),
            Expr::Aggregate(agg) => {
                if let Some(modifier) = &agg.modifier {
                    self.grouping
                        .extend(modifier.labels().labels.iter().cloned());
                }
            }
            _ => {}
        }
        Ok(true)
    }
}

/// Parses `expr` with a real PromQL parser (Grafana's `$__…` interval variables become `5m`,
/// as Grafana substitutes them) and returns its selectors and grouping labels.
fn metric_refs(expr: &str) -> Result<(Vec<MetricRef>, Vec<String>), String> {
    let expr = ["$__rate_interval", "$__interval", "$__range"]
        .iter()
        .fold(expr.to_string(), |e, var| e.replace(var, "5m"));
    let ast = promql_parser::parser::parse(&expr)?;
    let mut collector = SelectorCollector::default();
    let Ok(_) = promql_parser::util::walk_expr(&mut collector, &ast);
    Ok((collector.refs, collector.grouping))
}

/// Every `expr` of the dashboard's panels (rows and nested panels included), with its title.
fn dashboard_exprs() -> Vec<(String, String)> {
    let dash: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/spinescreen-dashboard.json"))
            .expect("dashboard JSON");
    let mut out = Vec::new();
    fn walk(v: &serde_json::Value, title: &str, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(m) => {
                let title = m.get("title").and_then(|t| t.as_str()).unwrap_or(title);
                if let Some(e) = m.get("expr").and_then(|e| e.as_str()) {
                    out.push((title.to_string(), e.to_string()));
                }
                for child in m.values() {
                    walk(child, title, out);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|c| walk(c, title, out)),
            _ => {}
        }
    }
    walk(&dash, "", &mut out);
    out
}

fn alert_rules() -> Vec<Value> {
    let rules = yaml("deploy/alerts.yml");
    seq(&rules["groups"])
        .iter()
        .flat_map(|g| seq(&g["rules"]).to_vec())
        .collect()
}

fn alert_exprs() -> Vec<(String, String)> {
    alert_rules()
        .iter()
        .map(|r| {
            (
                str_at(r, &["alert"]).expect("alert name").to_string(),
                str_at(r, &["expr"]).expect("expr").to_string(),
            )
        })
        .collect()
}

fn check_queries(source: &str, exprs: &[(String, String)]) {
    let exported = exported_series();
    let le_values = exported_le_values();
    assert!(!exprs.is_empty(), "{source}: no queries found");
    for (title, expr) in exprs {
        let (refs, grouping) = metric_refs(expr)
            .unwrap_or_else(|e| panic!("{source} {title:?}: invalid PromQL {expr:?}: {e}"));
        assert!(
            !refs.is_empty(),
            "{source} {title:?}: no metric in {expr:?}"
        );
        let mut known_labels: BTreeSet<String> = BTreeSet::from(["le".into()]);
        for r in &refs {
            let labels: BTreeSet<String> =
                if r.name.starts_with("spinescreen_") || r.name.starts_with("process_") {
                    exported
                        .get(&r.name)
                        .unwrap_or_else(|| {
                            panic!(
                            "{source} {title:?} queries {} which no worker exports; exported: {:?}",
                            r.name,
                            exported.keys().collect::<Vec<_>>()
                        )
                        })
                        .clone()
                } else if r.name.starts_with("rabbitmq_") {
                    assert!(
                        RABBITMQ_QUEUE_METRICS.contains(&r.name.as_str()),
                        "{source} {title:?}: {} is not a rabbitmq_prometheus queue metric",
                        r.name
                    );
                    ["queue", "vhost"].map(String::from).into()
                } else if r.name == "up" {
                    ["job", "instance"].map(String::from).into()
                } else {
                    panic!(
                        "{source} {title:?}: unexpected metric {} in {expr:?}",
                        r.name
                    );
                };
            for (label, _) in &r.labels {
                assert!(
                    labels.contains(label) || (label == "job" || label == "instance"),
                    "{source} {title:?}: {} has no label {label}",
                    r.name
                );
            }
            for m in r.matchers.iter().filter(|m| m.name == "le") {
                let value = &m.value;
                assert!(
                    le_values.iter().any(|le| m.is_match(le)),
                    "{source} {title:?}: no bucket le={value:?}; buckets {le_values:?}"
                );
                for le in le_values.iter().filter(|le| m.is_match(le)) {
                    let prometheus3 = prometheus3_le(le);
                    assert!(
                        m.is_match(&prometheus3),
                        "{source} {title:?}: le matcher {value:?} selects {le:?} but not \
                         {prometheus3:?}, as Prometheus 3 writes that bucket"
                    );
                }
            }
            known_labels.extend(labels);
        }
        known_labels.extend(["job".to_string(), "instance".to_string()]);
        for label in grouping {
            assert!(
                known_labels.contains(&label),
                "{source} {title:?}: groups by {label}, which its metrics lack"
            );
        }
    }
}

#[test]
fn dashboard_queries_only_metrics_the_workers_export() {
    check_queries("dashboard", &dashboard_exprs());
}

#[test]
fn alert_rules_query_only_metrics_the_workers_export() {
    check_queries("alerts.yml", &alert_exprs());
}

#[test]
fn promql_parsing_finds_metrics_labels_and_grouping() {
    let (refs, grouping) = metric_refs(
        r#"histogram_quantile(0.95, sum by (le, stage) (rate(spinescreen_stage_duration_seconds_bucket{stage!="x",le="390"}[$__rate_interval]))) or up{job=~"a.+"} == 0"#,
    )
    .expect("valid PromQL");
    let names: Vec<&str> = refs.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["spinescreen_stage_duration_seconds_bucket", "up"]);
    assert_eq!(
        refs[0].labels,
        [
            ("stage".to_string(), "x".to_string()),
            ("le".to_string(), "390".to_string())
        ]
    );
    assert_eq!(grouping, ["le", "stage"]);
}

#[test]
fn a_query_on_a_metric_nobody_exports_is_caught() {
    let result = std::panic::catch_unwind(|| {
        check_queries(
            "probe",
            &[(
                "bogus".into(),
                "sum(rate(spinescreen_bogus_total[5m]))".into(),
            )],
        )
    });
    assert!(
        result.is_err(),
        "an unknown spinescreen_ metric must fail the check"
    );
    let result = std::panic::catch_unwind(|| {
        check_queries(
            "probe",
            &[(
                "bad label".into(),
                "sum by (destination) (spinescreen_jobs_in_flight)".into(),
            )],
        )
    });
    assert!(
        result.is_err(),
        "grouping by a label the metric lacks must fail the check"
    );
    let le_query = |matcher: &str| {
        let expr = format!("sum(rate(spinescreen_study_latency_seconds_bucket{{{matcher}}}[1h]))");
        std::panic::catch_unwind(|| check_queries("probe", &[("le".into(), expr)]))
    };
    assert!(
        le_query(r#"le="390""#).is_err(),
        "le=\"390\" misses the bucket once Prometheus 3 writes it as 390.0"
    );
    assert!(le_query(r#"le="391""#).is_err(), "no such bucket");
    assert!(le_query(r#"le=~"390(\\.0)?""#).is_ok());
    assert!(
        metric_refs("sum(rate(spinescreen_jobs_total[5m])").is_err(),
        "unbalanced parentheses are not PromQL"
    );
}

#[test]
fn dashboard_shows_sla_share_latency_stages_queues_outcomes_and_throughput() {
    let exprs = dashboard_exprs();
    let has = |needle: &[&str]| {
        exprs
            .iter()
            .any(|(_, e)| needle.iter().all(|n| e.contains(n)))
    };
    assert!(
        has(&[
            "spinescreen_study_latency_seconds_bucket{le=~\"390(\\\\.0)?\"}",
            "/",
            "spinescreen_study_latency_seconds_count"
        ]),
        "share of studies within 390 s"
    );
    assert!(
        has(&[
            "histogram_quantile(0.95",
            "spinescreen_study_latency_seconds_bucket"
        ]),
        "p95 latency"
    );
    assert!(
        has(&[
            "histogram_quantile(0.95",
            "by (le, stage)",
            "spinescreen_stage_duration_seconds_bucket"
        ]),
        "per-stage p95"
    );
    assert!(has(&["rabbitmq_queue_messages_ready"]), "queue depth");
    assert!(
        has(&["spinescreen_studies_total{status=\"technical_defect\"}"]),
        "defects"
    );
    assert!(
        has(&["spinescreen_studies_total{status=\"abstained\"}"]),
        "abstentions"
    );
    assert!(
        has(&["spinescreen_studies_total", "3600"]),
        "throughput per hour"
    );
    assert!(has(&["rabbitmq_queue_messages{", "dlq"]), "dead letters");
    let dash: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/spinescreen-dashboard.json")).expect("JSON");
    let uid = dash["uid"].as_str().unwrap_or_default();
    assert!(!uid.is_empty() && uid.len() <= 40, "dashboard uid");
}

/// `(title, rawSql)` of every dashboard query on the ledger's PostgreSQL datasource.
fn dashboard_ledger_queries() -> Vec<(String, String)> {
    let dash: serde_json::Value =
        serde_json::from_str(&read("deploy/grafana/spinescreen-dashboard.json")).expect("JSON");
    let mut out = vec![];
    for panel in dash["panels"].as_array().expect("panels") {
        for t in panel["targets"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            if let Some(sql) = t["rawSql"].as_str() {
                assert_eq!(
                    t["datasource"]["uid"].as_str(),
                    Some("ledger"),
                    "{}: SQL goes to the ledger datasource",
                    panel["title"]
                );
                out.push((
                    panel["title"].as_str().unwrap_or("").to_string(),
                    sql.to_string(),
                ));
            }
        }
    }
    out
}

#[test]
fn dashboard_ledger_panels_use_the_provisioned_postgres_datasource() {
    let ds = yaml("deploy/grafana/provisioning/datasources/ledger.yml");
    let ledger = &seq(&ds["datasources"])[0];
    assert_eq!(str_at(ledger, &["uid"]), Some("ledger"));
    assert_eq!(
        str_at(ledger, &["type"]),
        Some("grafana-postgresql-datasource")
    );
    assert_eq!(str_at(ledger, &["url"]), Some("postgres:5432"));
    assert_eq!(
        str_at(ledger, &["jsonData", "database"]),
        Some("spinescreen")
    );
    assert_eq!(
        str_at(ledger, &["secureJsonData", "password"]),
        Some("$POSTGRES_PASSWORD"),
        "the password comes from the environment, never the file"
    );
    let queries = dashboard_ledger_queries();
    let titles: Vec<&str> = queries.iter().map(|(t, _)| t.as_str()).collect();
    for want in ["per station", "by station and reason", "Monthly agreement"] {
        assert!(
            titles.iter().any(|t| t.contains(want)),
            "{want}: {titles:?}"
        );
    }
}

/// Every ledger panel's SQL runs on a migrated ledger (Grafana's time macros replaced by the
/// numbers Grafana puts there) and returns the rows its panel shows.
#[test]
fn dashboard_ledger_panels_query_the_ledger_schema() {
    if std::env::var("SPINESCREEN_SKIP_SERVICES").as_deref() == Ok("1") {
        eprintln!("SPINESCREEN_SKIP_SERVICES=1: skipping a PostgreSQL test");
        return;
    }
    let url = std::env::var("SPINESCREEN_TEST_DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into());
    let schema = format!("ledger_dash_{}", std::process::id());
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let ledger = spinescreen_ledger::Ledger::connect(&url, &schema)
            .await
            .unwrap_or_else(|e| panic!("PostgreSQL at {url} is needed: {e:#}"));
        let now_ms = spinescreen_runtime::events::now_unix_ms() as i64;
        let c = ledger.client();
        let result = async {
            for (uid, station, status, reason) in [
                (
                    "1.2.3.1",
                    "CT-3",
                    "technical_defect",
                    Some("RING_ARTIFACTS"),
                ),
                ("1.2.3.2", "CT-3", "ok", None),
                ("1.2.3.3", "", "ok", None),
            ] {
                c.execute(
                    "INSERT INTO studies (study_uid, station_name, received_at_ms, state, status,
                                          reason_code)
                     VALUES ($1, $2, $3, 'done', $4, $5)",
                    &[&uid, &station, &(now_ms - 60_000), &status, &reason],
                )
                .await?;
                c.execute(
                    "INSERT INTO reviews (study_uid, station_name, reviewed_at_ms, agree_conclusion,
                                          agree_localisation)
                     VALUES ($1, $2, $3, $4, true)",
                    &[&uid, &station, &(now_ms - 60_000), &(uid != "1.2.3.1")],
                )
                .await?;
            }
            let mut rows_by_title = BTreeMap::new();
            for (title, sql) in dashboard_ledger_queries() {
                let sql = sql
                    .replace(
                        "$__unixEpochFrom()",
                        &((now_ms / 1000) - 30 * 86_400).to_string(),
                    )
                    .replace("$__unixEpochTo()", &((now_ms / 1000) + 60).to_string());
                assert!(
                    !sql.contains("$__"),
                    "{title}: a macro this test does not know: {sql}"
                );
                let rows = c
                    .query(sql.as_str(), &[])
                    .await
                    .unwrap_or_else(|e| panic!("{title}: {e}\n{sql}"));
                rows_by_title.insert(title, rows);
            }
            let by = |part: &str| {
                rows_by_title
                    .iter()
                    .find(|(t, _)| t.contains(part))
                    .map(|(_, r)| r)
                    .unwrap()
            };
            let stations = by("Studies and defects per station");
            let ct3 = stations
                .iter()
                .find(|r| r.get::<_, String>("station") == "CT-3")
                .expect("CT-3 row");
            assert_eq!(ct3.get::<_, i64>("studies"), 2);
            assert_eq!(ct3.get::<_, i64>("not_analysed"), 1);
            assert_eq!(ct3.get::<_, i64>("ring_artefacts"), 1);
            assert!(stations
                .iter()
                .any(|r| r.get::<_, String>("station") == "unknown"));
            let reasons = by("by station and reason");
            assert_eq!(reasons.len(), 1);
            assert_eq!(reasons[0].get::<_, String>("reason"), "RING_ARTIFACTS");
            let monthly = by("Monthly agreement");
            assert_eq!(monthly.len(), 1);
            let agree: f64 = monthly[0].get("conclusion");
            assert!((agree - 2.0 / 3.0).abs() < 1e-9, "{agree}");
            Ok::<(), tokio_postgres::Error>(())
        }
        .await;
        let _ = c
            .batch_execute(&format!("DROP SCHEMA IF EXISTS {schema} CASCADE"))
            .await;
        result.unwrap();
    });
}

#[test]
fn alert_rules_cover_sla_breach_dead_letter_growth_and_worker_down() {
    let rules = alert_rules();
    for r in &rules {
        let name = str_at(r, &["alert"]).unwrap_or("?");
        assert!(
            matches!(
                str_at(r, &["labels", "severity"]),
                Some("warning" | "critical")
            ),
            "{name}: severity"
        );
        assert!(
            str_at(r, &["annotations", "summary"]).is_some(),
            "{name}: summary"
        );
        if let Some(d) = str_at(r, &["for"]) {
            assert!(
                d.ends_with('m') || d.ends_with('s') || d.ends_with('h'),
                "{name}: for {d}"
            );
        }
    }
    let exprs = alert_exprs();
    let has = |needle: &[&str]| {
        exprs
            .iter()
            .any(|(_, e)| needle.iter().all(|n| e.contains(n)))
    };
    assert!(
        has(&["spinescreen_studies_over_sla_total", "> 0"]),
        "any study over SLA"
    );
    assert!(
        has(&["le=~\"390(\\\\.0)?\"", "< 0.99"]),
        "share within SLA below 99 %"
    );
    assert!(
        has(&["delta(rabbitmq_queue_messages{", "dlq", "> 0"]),
        "dead-letter queue growing"
    );
    assert!(has(&["up{job=~\"spinescreen-.+\"} == 0"]), "a worker down");
    for stage in worker_names() {
        assert!(
            has(&[&format!("absent(up{{job=\"spinescreen-{stage}\"}})")]),
            "no {stage} worker at all"
        );
    }
}

#[test]
fn chart_alert_rules_are_the_pilot_alert_rules() {
    assert_eq!(
        read("helm/spinescreen/files/alerts.yml"),
        read("deploy/alerts.yml"),
        "helm/spinescreen/files/alerts.yml must be a copy of deploy/alerts.yml"
    );
}

// ---------------------------------------------------------------------------------------------
// Compose pilot, Prometheus, Dockerfile
// ---------------------------------------------------------------------------------------------

#[test]
fn compose_pilot_runs_every_stage_and_the_receivers_with_broker_store_and_monitoring() {
    let compose = yaml("deploy/docker-compose.yml");
    let services = compose["services"].as_mapping().expect("services");
    let service = |name: &str| -> &Value {
        services
            .get(name)
            .unwrap_or_else(|| panic!("compose has no service {name}"))
    };
    let worker_image = str_at(service("ingest"), &["image"])
        .expect("image")
        .to_string();
    for stage in worker_names() {
        let svc = service(stage);
        let cmd: Vec<&str> = seq(&svc["command"])
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(cmd, ["worker", stage], "compose {stage} command");
        assert_eq!(
            str_at(svc, &["image"]),
            Some(worker_image.as_str()),
            "{stage} image"
        );
        assert_eq!(
            str_at(svc, &["environment", "SPINESCREEN_CONFIG"]),
            Some("/etc/spinescreen/config.toml")
        );
        assert_eq!(
            str_at(svc, &["depends_on", "rabbitmq", "condition"]),
            Some("service_healthy"),
            "{stage} waits for the broker"
        );
    }
    let published = |name: &str| -> Vec<&str> {
        seq(&service(name)["ports"])
            .iter()
            .filter_map(Value::as_str)
            .collect()
    };
    let receiver_ports = published(RECEIVER);
    assert!(
        receiver_ports.iter().any(|p| p.ends_with(":11112")),
        "DICOM port published by the receivers"
    );
    assert!(
        receiver_ports.iter().any(|p| p.ends_with(":8042")),
        "STOW-RS port published by the receivers"
    );
    for stage in stage_names() {
        assert!(
            published(stage).is_empty(),
            "{stage} publishes ports: scaling it must not touch the hospital-facing ones"
        );
    }

    let rabbit = service("rabbitmq");
    assert!(str_at(rabbit, &["image"])
        .unwrap_or_default()
        .starts_with("rabbitmq:3"));
    assert!(str_at(rabbit, &["image"])
        .unwrap_or_default()
        .contains("management"));
    let plugins = read("deploy/rabbitmq/enabled_plugins");
    assert!(plugins.contains("rabbitmq_prometheus") && plugins.trim_end().ends_with("]."));

    let s3 = service("s3");
    assert_eq!(
        str_at(s3, &["build", "target"]),
        Some("s3s-fs"),
        "S3 store built from the Dockerfile"
    );
    // Every file the compose mounts exists.
    for (name, svc) in services {
        for vol in seq(&svc["volumes"]).iter().filter_map(Value::as_str) {
            if let Some(src) = vol.strip_prefix("./") {
                let src = src.split(':').next().unwrap_or_default();
                assert!(
                    repo().join("deploy").join(src).exists(),
                    "{name:?} mounts missing ./{src}"
                );
            }
        }
    }
    let mounts = |svc: &str| -> Vec<String> {
        seq(&service(svc)["volumes"])
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect()
    };
    assert!(mounts("prometheus")
        .iter()
        .any(|m| m.starts_with("./alerts.yml:")));
    assert!(mounts("prometheus")
        .iter()
        .any(|m| m.starts_with("./prometheus.yml:")));
    assert!(mounts("grafana")
        .iter()
        .any(|m| m.starts_with("./grafana/spinescreen-dashboard.json:")));
    assert!(mounts("grafana")
        .iter()
        .any(|m| m.starts_with("./grafana/provisioning:")));
}

#[test]
fn prometheus_scrapes_each_stage_and_rabbitmq_per_queue() {
    let prom = yaml("deploy/prometheus.yml");
    assert!(seq(&prom["rule_files"])
        .iter()
        .any(|f| f.as_str() == Some("/etc/prometheus/alerts.yml")));
    let jobs = seq(&prom["scrape_configs"]);
    let job = |name: &str| {
        jobs.iter()
            .find(|j| str_at(j, &["job_name"]) == Some(name))
            .unwrap_or_else(|| panic!("prometheus.yml has no job {name}"))
    };
    for stage in worker_names() {
        let j = job(&format!("spinescreen-{stage}"));
        let sd = &seq(&j["dns_sd_configs"])[0];
        assert_eq!(
            str_at(&seq(&sd["names"])[0], &[]),
            Some(stage),
            "{stage} found by its compose name"
        );
        assert_eq!(sd["port"].as_u64(), Some(9464));
    }
    // Per-queue series (label `queue`) come only from the per-object endpoint.
    assert_eq!(
        str_at(job("rabbitmq"), &["metrics_path"]),
        Some("/metrics/per-object")
    );
    let datasource = yaml("deploy/grafana/provisioning/datasources/prometheus.yml");
    assert_eq!(
        str_at(&seq(&datasource["datasources"])[0], &["url"]),
        Some("http://prometheus:9090")
    );
}

/// `${NAME}`, `${NAME:-default}` and `${NAME:?message}` of a compose value, from `vars`.
fn interpolate(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let end = start + rest[start..].find('}').expect("closing brace");
        let inner = &rest[start + 2..end];
        let name_end = inner.find([':', '-', '?']).unwrap_or(inner.len());
        let name = &inner[..name_end];
        let default = inner[name_end..].strip_prefix(":-").unwrap_or("");
        out.push_str(vars.get(name).map(String::as_str).unwrap_or(default));
        rest = &rest[end + 1..];
    }
    out.push_str(rest);
    out
}

#[test]
fn pilot_config_and_compose_env_load_into_every_stage_config() {
    use spinescreen_runtime::{BrokerConfig, StoreConfig};
    let example: BTreeMap<String, String> = read("deploy/.env.example")
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let compose = yaml("deploy/docker-compose.yml");
    let text = read("deploy/config.toml");
    for stage in worker_names() {
        let env: Vec<(String, String)> = at(&compose, &["services", stage, "environment"])
            .as_mapping()
            .expect("environment map")
            .iter()
            .map(|(k, v)| {
                let k = k.as_str().expect("name").to_string();
                (k, interpolate(v.as_str().expect("string value"), &example))
            })
            .collect();
        let config = load_config(&text, env);
        let app = app_config(&config);
        let runtime = &app.runtime;
        assert_eq!(
            runtime.metrics_addr.to_string(),
            "0.0.0.0:9464",
            "reachable from Prometheus"
        );
        assert!(
            runtime.shutdown_grace_secs < 150,
            "below compose's stop_grace_period"
        );
        match &runtime.broker {
            BrokerConfig::Amqp { url, .. } => assert_eq!(
                url,
                &format!(
                    "amqp://{}:{}@rabbitmq:5672/%2f",
                    example["RABBITMQ_USER"], example["RABBITMQ_PASSWORD"]
                )
            ),
            other => panic!("{stage}: broker {other:?}"),
        }
        match &runtime.store {
            StoreConfig::S3 {
                endpoint,
                bucket,
                secret_key,
                allow_http,
                ..
            } => {
                assert!(
                    endpoint.starts_with("http://s3:8014") && *allow_http,
                    "compose store"
                );
                assert_eq!(bucket, "spinescreen", "the bucket the s3 service creates");
                assert_eq!(secret_key, &example["S3_SECRET_KEY"]);
            }
            other => panic!("{stage}: store {other:?}"),
        }
        let ingest = &app.ingest;
        assert_eq!((ingest.scp.port, ingest.stow.port), (11112, 8042));
        assert_eq!(
            ingest.stow.bearer_token.is_some(),
            stage == RECEIVER,
            "{stage}: STOW-RS token"
        );
    }
    let s3_entry = str_at(&compose, &["services", "s3", "entrypoint"])
        .map(String::from)
        .unwrap_or_else(|| {
            seq(at(&compose, &["services", "s3", "entrypoint"]))
                .iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(" ")
        });
    assert!(
        s3_entry.contains("mkdir -p /data/spinescreen"),
        "s3s-fs serves the bucket"
    );
}

#[test]
fn pilot_config_has_the_same_keys_as_the_chart_config() {
    fn keys(t: &toml::Table, prefix: &str, out: &mut BTreeSet<String>) {
        for (k, v) in t {
            let path = format!("{prefix}{k}");
            match v {
                toml::Value::Table(inner) => {
                    out.insert(format!("[{path}]"));
                    keys(inner, &format!("{path}."), out)
                }
                _ => {
                    out.insert(path);
                }
            }
        }
    }
    let pilot: toml::Table = read("deploy/config.toml")
        .parse()
        .expect("deploy/config.toml is TOML");
    let mut pilot_keys = BTreeSet::new();
    keys(&pilot, "", &mut pilot_keys);
    let Some(helm) = helm() else { return };
    let mut chart_keys = BTreeSet::new();
    keys(&rendered_config(&render(&helm, &[])), "", &mut chart_keys);
    assert_eq!(
        pilot_keys, chart_keys,
        "compose and Helm configure the same keys"
    );
}

#[test]
fn dockerfile_builds_the_binary_and_runs_it_as_non_root() {
    let dockerfile = read("deploy/Dockerfile");
    let stages: Vec<&str> = dockerfile
        .lines()
        .filter(|l| l.starts_with("FROM "))
        .collect();
    assert!(stages.len() >= 2, "multi-stage build");
    assert!(
        stages[0].contains("rust:") && stages[0].ends_with("AS builder"),
        "{}",
        stages[0]
    );
    let last = dockerfile.rsplit("\nFROM ").next().expect("final stage");
    assert!(
        last.starts_with("debian:") && last.contains("-slim"),
        "runtime on debian slim"
    );
    let user = last
        .lines()
        .filter_map(|l| l.strip_prefix("USER "))
        .next_back()
        .expect("runtime stage sets USER");
    assert!(
        !user.starts_with('0') && !user.starts_with("root"),
        "runtime runs as {user}"
    );
    assert!(last.contains("COPY --from=builder /out/spinescreen /usr/local/bin/spinescreen"));
    let bin: toml::Table = read("services/spinescreen/Cargo.toml")
        .parse()
        .expect("Cargo.toml");
    let package = bin["package"]["name"].as_str().expect("package name");
    assert!(
        dockerfile.contains(&format!("cargo build --release --locked -p {package}")),
        "builds the {package} package"
    );
    let ignore = read("deploy/Dockerfile.dockerignore");
    assert!(
        ignore.lines().any(|l| l.trim() == "target/"),
        "target/ stays out of the context"
    );
}

/// The receiver pods' spool volume, mounted where `[ingest.scp] spool_dir` says; no other pod
/// gets one.
#[test]
fn chart_mounts_the_receivers_spool_where_the_config_puts_it() {
    let Some(helm) = helm() else { return };
    for (extra, source) in [
        ("", "emptyDir"),
        (
            "receiver: {spool: {volume: {persistentVolumeClaim: {claimName: receiver-spool}}}}\n",
            "persistentVolumeClaim",
        ),
    ] {
        let docs = render(&helm, &[extra]);
        let config = rendered_config(&docs);
        let spool_dir = config["ingest"]["scp"]["spool_dir"]
            .as_str()
            .expect("[ingest.scp] spool_dir set");
        for dep in of_kind(&docs, "Deployment") {
            let pod = at(dep, &["spec", "template"]);
            let container = &seq(at(pod, &["spec", "containers"]))[0];
            let mount = seq(&container["volumeMounts"])
                .iter()
                .find(|m| str_at(m, &["name"]) == Some("spool"))
                .and_then(|m| str_at(m, &["mountPath"]));
            let volume = seq(at(pod, &["spec", "volumes"]))
                .iter()
                .find(|v| str_at(v, &["name"]) == Some("spool"));
            if name_of(dep) == format!("{RELEASE}-spinescreen-{RECEIVER}") {
                assert_eq!(mount, Some(spool_dir), "receiver spool mount");
                let volume = volume.expect("receiver spool volume");
                assert!(!volume[source].is_null(), "spool volume {volume:?}");
            } else {
                assert!(mount.is_none() && volume.is_none(), "{}", name_of(dep));
            }
        }
    }
}

/// The compose receiver spools to a named volume at `spool_dir` of deploy/config.toml, and the
/// image creates that directory for its non-root user (a fresh named volume copies it).
#[test]
fn compose_receiver_spools_to_a_named_volume() {
    let compose = yaml("deploy/docker-compose.yml");
    let config: toml::Table = read("deploy/config.toml").parse().expect("config.toml");
    let spool_dir = config["ingest"]["scp"]["spool_dir"]
        .as_str()
        .expect("[ingest.scp] spool_dir set");
    let mounts: Vec<&str> = seq(at(&compose, &["services", RECEIVER, "volumes"]))
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(
        mounts.contains(&format!("receiver-spool:{spool_dir}").as_str()),
        "receiver mounts {mounts:?}"
    );
    assert!(compose["volumes"]
        .as_mapping()
        .expect("named volumes")
        .contains_key("receiver-spool"));
    let dockerfile = read("deploy/Dockerfile");
    assert!(
        dockerfile.contains(&format!("-o spinescreen -g spinescreen {spool_dir}")),
        "the runtime image creates {spool_dir} for its user"
    );
}
