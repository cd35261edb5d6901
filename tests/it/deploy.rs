//! The deploy files parse, say what the docs say, hold configurations that pass
//! validation; the dashboard and the alert rules ask only for metrics a live gateway
//! exports, and the rules pass their promtool tests.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde_json::Value;

use crate::support::{now, pairs, smartcv_headers, Gateway, Upstream};

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("deploy")
        .join(path)
}

/// Every YAML document of a file, as JSON values.
fn yaml(path: &str) -> Vec<Value> {
    let text = std::fs::read_to_string(deploy(path)).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).unwrap_or_else(|e| panic!("{path}: {e}")))
        .collect()
}

/// Where the manifests mount the Secret's files.
const SECRETS: &str = "/run/secrets/hookwarden/";

/// Loads `text` as the gateway would, with each file under [`SECRETS`] it names written
/// in a temporary folder that stands for the mount.
fn valid_config(text: &str) {
    let mount = tempfile::tempdir().expect("tempdir");
    for reference in text.split("${file:").skip(1) {
        let path = reference.split('}').next().expect("a closing brace");
        let name = path
            .strip_prefix(SECRETS)
            .unwrap_or_else(|| panic!("{path}: secrets are read from {SECRETS}"));
        std::fs::write(mount.path().join(name), format!("{name}-test-value\n")).expect("write");
    }
    let text = text.replace(&format!("${{file:{SECRETS}"), "${file:");
    let vars = |name: &str| Some(format!("{name}-test-value"));
    if let Err(e) = hookwarden::config::load_str(&text, mount.path(), &vars) {
        panic!("invalid configuration:\n{e}");
    }
}

/// The container mounts the Secret where the configuration reads its files.
fn mounts_the_secrets(pod: &Value, container: &Value) {
    let volume = pod["volumes"]
        .as_array()
        .expect("volumes")
        .iter()
        .find(|v| v["secret"]["secretName"] == "hookwarden-secrets")
        .expect("a volume of the Secret");
    let mounted = container["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .any(|m| m["name"] == volume["name"] && m["mountPath"] == SECRETS.trim_end_matches('/'));
    assert!(mounted, "the Secret is mounted at {SECRETS}");
    assert!(
        container.get("envFrom").is_none(),
        "secrets come from files, which a SIGHUP reads again, not from the environment"
    );
}

#[test]
fn the_kubernetes_sidecar_probes_the_admin_port_and_exposes_only_the_public_one() {
    let deployment = &yaml("kubernetes/deployment.yaml")[0];
    let containers = deployment["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers");
    assert_eq!(containers.len(), 2, "the app and its sidecar");
    let sidecar = containers
        .iter()
        .find(|c| c["name"] == "hookwarden")
        .expect("hookwarden container");
    assert_eq!(sidecar["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(sidecar["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(sidecar["readinessProbe"]["httpGet"]["port"], "admin");
    let ports: Vec<_> = sidecar["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| (p["name"].clone(), p["containerPort"].clone()))
        .collect();
    assert_eq!(
        ports,
        [
            ("public".into(), 8080.into()),
            ("admin".into(), 9090.into())
        ]
    );
    mounts_the_secrets(&deployment["spec"]["template"]["spec"], sidecar);
    let annotations = &deployment["spec"]["template"]["metadata"]["annotations"];
    assert_eq!(
        (
            annotations["prometheus.io/scrape"].as_str(),
            annotations["prometheus.io/port"].as_str()
        ),
        (Some("true"), Some("9090"))
    );

    let service = &yaml("kubernetes/service.yaml")[0];
    let exposed: Vec<_> = service["spec"]["ports"]
        .as_array()
        .expect("ports")
        .iter()
        .map(|p| p["targetPort"].clone())
        .collect();
    assert_eq!(
        exposed,
        ["public"],
        "the admin port is never in the Service"
    );

    let secret = &yaml("kubernetes/secret.yaml")[0];
    let configmap = &yaml("kubernetes/configmap.yaml")[0];
    let toml = configmap["data"]["hookwarden.toml"]
        .as_str()
        .expect("hookwarden.toml");
    for key in secret["stringData"].as_object().expect("stringData").keys() {
        assert!(
            toml.contains(&format!("${{file:{SECRETS}{key}}}")),
            "{key} is mounted but not used"
        );
    }
    valid_config(toml);
    // On SIGTERM the pod keeps serving while it leaves the endpoints, then drains; both
    // within the time Kubernetes gives it before SIGKILL.
    let grace = deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"]
        .as_u64()
        .expect("terminationGracePeriodSeconds");
    let file: toml::Table = toml.parse().expect("TOML");
    let seconds = |key: &str| {
        let text = file["server"][key].as_str().expect("a duration");
        humantime::parse_duration(text).expect("duration").as_secs()
    };
    let (delay, drain) = (seconds("shutdown_delay"), seconds("shutdown_grace"));
    assert!(delay >= 5, "no preStop sleep in a distroless image");
    assert!(delay + drain < grace, "{delay}s + {drain}s within {grace}s");
    let resources = &yaml("kubernetes/kustomization.yaml")[0]["resources"];
    assert_eq!(resources.as_array().map(Vec::len), Some(4));
}

#[test]
fn the_queue_statefulset_keeps_the_spool_on_a_claimed_volume() {
    let set = &yaml("kubernetes/queue-statefulset.yaml")[0];
    assert_eq!(set["kind"], "StatefulSet");
    assert_eq!(set["spec"]["replicas"], 1, "one process per spool");
    let claim = &set["spec"]["volumeClaimTemplates"][0];
    let sidecar = set["spec"]["template"]["spec"]["containers"]
        .as_array()
        .expect("containers")
        .iter()
        .find(|c| c["name"] == "hookwarden")
        .expect("hookwarden container")
        .clone();
    mounts_the_secrets(&set["spec"]["template"]["spec"], &sidecar);
    let mounted = sidecar["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .any(|m| m["name"] == claim["metadata"]["name"] && m["mountPath"] == "/var/lib/hookwarden");
    assert!(
        mounted,
        "the claimed volume is where docs/queue.md puts queue.dir"
    );
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/queue.md");
    let docs = std::fs::read_to_string(docs).expect("docs/queue.md");
    assert!(docs.contains("dir = \"/var/lib/hookwarden\""));
}

#[test]
fn the_compose_stack_and_its_prometheus_config_hold_together() {
    let compose = &yaml("compose.yaml")[0];
    let services: BTreeSet<_> = compose["services"]
        .as_object()
        .expect("services")
        .keys()
        .cloned()
        .collect();
    assert_eq!(
        services,
        ["app", "grafana", "hookwarden", "prometheus"]
            .map(String::from)
            .into()
    );
    assert_eq!(
        compose["services"]["hookwarden"]["build"]["dockerfile"],
        "deploy/Dockerfile"
    );
    let prometheus = &yaml("prometheus/prometheus.yml")[0];
    assert_eq!(prometheus["rule_files"][0], "alerts.yml");
    assert_eq!(
        prometheus["scrape_configs"][0]["static_configs"][0]["targets"][0],
        "hookwarden:9090"
    );
    let toml = std::fs::read_to_string(deploy("hookwarden.compose.toml")).expect("compose config");
    assert!(
        toml.contains("listen = \"0.0.0.0:9090\""),
        "Prometheus scrapes the admin port from another container"
    );
    valid_config(&toml);
    for provisioning in [
        "grafana/provisioning/datasources/prometheus.yaml",
        "grafana/provisioning/dashboards/hookwarden.yaml",
    ] {
        assert_eq!(yaml(provisioning)[0]["apiVersion"], 1);
    }
    let dockerfile = std::fs::read_to_string(deploy("Dockerfile")).expect("Dockerfile");
    for needed in [
        "USER nonroot",
        "EXPOSE 8080 9090",
        "HOOKWARDEN_CONFIG=/etc/hookwarden/hookwarden.toml",
        "AS build",
    ] {
        assert!(dockerfile.contains(needed), "Dockerfile lacks {needed:?}");
    }
    // The dependencies are built in a layer before the sources are copied in.
    let deps = dockerfile.find("&& cargo build").expect("a build");
    let sources = dockerfile.find("COPY src").expect("the sources copied");
    assert!(
        dockerfile.find("COPY Cargo.toml Cargo.lock") < Some(deps) && deps < sources,
        "dependencies in their own layer"
    );
}

/// The expressions of every alert rule in `deploy/prometheus/alerts.yml`, by name.
fn alert_rules() -> Vec<(String, String)> {
    let rules = &yaml("prometheus/alerts.yml")[0];
    rules["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .flat_map(|g| g["rules"].as_array().expect("rules").iter())
        .map(|r| {
            let name = r["alert"].as_str().expect("alert name").to_string();
            (name, r["expr"].as_str().expect("expr").to_string())
        })
        .collect()
}

#[tokio::test]
async fn every_metric_the_dashboard_and_the_alerts_query_is_exported() {
    let text =
        std::fs::read_to_string(deploy("grafana/hookwarden-dashboard.json")).expect("dashboard");
    let dashboard: Value = serde_json::from_str(&text).expect("dashboard JSON");
    let mut queried = BTreeSet::new();
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            exprs.push(target["expr"].as_str().expect("expr").to_string());
        }
    }
    exprs.push(
        dashboard["templating"]["list"][0]["definition"]
            .as_str()
            .expect("variable")
            .to_string(),
    );
    let reloads = &dashboard["annotations"]["list"][0];
    assert_eq!(reloads["name"], "Config reloads");
    exprs.push(
        reloads["expr"]
            .as_str()
            .expect("annotation expr")
            .to_string(),
    );
    exprs.extend(alert_rules().into_iter().map(|(_, expr)| expr));
    for expr in &exprs {
        let mut rest = expr.as_str();
        while let Some(at) = rest.find("hookwarden_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            queried.insert(name);
        }
    }
    assert!(queried.len() >= 8, "{queried:?}");

    // A live gateway, after one delivery of each mode so that every family has samples.
    let upstream = Upstream::start().await;
    let spool = tempfile::tempdir().expect("tempdir");
    let queue_route = format!(
        "[queue]\ndir = \"{}\"\n{}\n[[routes]]\nname = \"queued\"\npath = \"/queued\"\nprovider = \"smartcv\"\nsecrets = [\"{}\"]\ndelivery = \"queue\"\n",
        spool.path().display(),
        crate::delivery::config(&upstream.url(), ""),
        crate::delivery::SECRET
    );
    let gw = Gateway::start(&queue_route).await;
    let body = crate::delivery::SC_BODY;
    let headers = smartcv_headers(crate::delivery::SECRET, now(), body);
    for path in ["/webhooks/smartcv", "/queued"] {
        assert_eq!(gw.post(path, &pairs(&headers), body).await.status, 200);
    }
    upstream.arrivals(2).await;
    // The queued event's attempt is counted once the app's answer is read: wait for it.
    let exported = loop {
        let exported: BTreeSet<String> = gw
            .metrics()
            .await
            .keys()
            .map(|series| series.split('{').next().unwrap_or(series).to_string())
            .collect();
        if exported.contains("hookwarden_delivery_attempts_total") {
            break exported;
        }
        tokio::task::yield_now().await;
    };
    let missing: Vec<_> = queried
        .iter()
        .filter(|name| !exported.contains(*name))
        .collect();
    assert!(
        missing.is_empty(),
        "the dashboard or the alerts query metrics the gateway does not export: {missing:?}"
    );
}

#[test]
fn the_replicas_overlay_shares_one_queue_in_a_redis_that_keeps_its_file() {
    let kustomization = &yaml("kubernetes/replicas/kustomization.yaml")[0];
    let resources: Vec<&str> = kustomization["resources"]
        .as_array()
        .expect("resources")
        .iter()
        .map(|r| r.as_str().expect("path"))
        .collect();
    assert_eq!(resources, ["../", "redis.yaml"], "the base, and Redis");
    for patch in kustomization["patches"].as_array().expect("patches") {
        let path = patch["path"].as_str().expect("path");
        assert!(
            deploy(&format!("kubernetes/replicas/{path}")).exists(),
            "{path}"
        );
    }
    let deployment = &yaml("kubernetes/replicas/deployment.yaml")[0];
    assert!(deployment["spec"]["replicas"].as_u64().expect("replicas") >= 2);

    let configmap = &yaml("kubernetes/replicas/configmap.yaml")[0];
    let text = configmap["data"]["hookwarden.toml"].as_str().expect("toml");
    valid_config(text);
    let queue = text.split("[queue]").nth(1).expect("a [queue] section");
    assert!(
        queue.trim_start().starts_with("backend = \"redis\""),
        "the queue is in Redis"
    );
    assert!(
        text.contains("${file:/run/secrets/hookwarden/REDIS_PASSWORD}"),
        "the password comes from the Secret"
    );

    let redis = yaml("kubernetes/replicas/redis.yaml");
    let set = redis
        .iter()
        .find(|d| d["kind"] == "StatefulSet")
        .expect("StatefulSet");
    let container = &set["spec"]["template"]["spec"]["containers"][0];
    let args: Vec<&str> = container["args"]
        .as_array()
        .expect("args")
        .iter()
        .map(|a| a.as_str().expect("arg"))
        .collect();
    let after = |flag: &str| args.iter().position(|a| *a == flag).map(|i| args[i + 1]);
    assert_eq!(
        after("--appendonly"),
        Some("yes"),
        "docs/queue.md: appendonly yes"
    );
    assert_eq!(after("--dir"), Some("/data"));
    let claim = &set["spec"]["volumeClaimTemplates"][0]["metadata"]["name"];
    let mounted = container["volumeMounts"]
        .as_array()
        .expect("mounts")
        .iter()
        .any(|m| m["name"] == *claim && m["mountPath"] == "/data");
    assert!(mounted, "the append-only file is on the claimed volume");
    let service = redis
        .iter()
        .find(|d| d["kind"] == "Service")
        .expect("Service");
    assert_eq!(
        service["metadata"]["name"], "redis",
        "the host in redis_url"
    );
    let docs = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/queue.md"))
        .expect("docs/queue.md");
    assert!(docs.contains("deploy/kubernetes/replicas/"));
}

/// The alert rules pass their own unit tests (`alerts.test.yml`), with Prometheus's
/// `promtool` (Debian's `prometheus` package; `.ci/run` installs it).
#[test]
fn the_alert_rules_pass_their_promtool_tests() {
    let dir = deploy("prometheus");
    let promtool = |args: &[&str]| {
        let out = std::process::Command::new("promtool")
            .args(args)
            .current_dir(&dir)
            .output()
            .unwrap_or_else(|e| {
                panic!("promtool: {e} (install Prometheus's promtool, e.g. apt-get install prometheus)")
            });
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "promtool {args:?}:\n{said}");
    };
    promtool(&["check", "config", "prometheus.yml"]);
    promtool(&["test", "rules", "alerts.test.yml"]);

    // Every alert has a test case that names it.
    let tests = std::fs::read_to_string(dir.join("alerts.test.yml")).expect("alerts.test.yml");
    for (name, _) in alert_rules() {
        assert!(
            tests.contains(&format!("alertname: {name}\n")),
            "{name} has no promtool test"
        );
    }
}

/// The alert examples in the README and in docs/operations.md are rules of alerts.yml,
/// word for word.
#[test]
fn the_documented_alerts_are_the_shipped_ones() {
    let rules = std::fs::read_to_string(deploy("prometheus/alerts.yml")).expect("alerts.yml");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for doc in ["README.md", "docs/operations.md"] {
        let text = std::fs::read_to_string(root.join(doc)).expect("doc");
        let blocks: Vec<&str> = text
            .split("```yaml\n")
            .skip(1)
            .filter_map(|b| b.split("```").next())
            .filter(|b| b.contains("- alert: "))
            .collect();
        assert!(!blocks.is_empty(), "{doc} shows no alert rule");
        for block in blocks {
            assert!(rules.contains(block), "{doc}: not in alerts.yml:\n{block}");
        }
    }
}
