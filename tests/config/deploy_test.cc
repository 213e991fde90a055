// deploy/: the Kubernetes manifests, the compose file and the Grafana provisioning read back
// as YAML and checked against what the daemon actually does (probe paths, admin port, the
// rules in the ConfigMap load), so they cannot drift from it unnoticed.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "config/config.h"

namespace triaged {
namespace {

namespace fs = std::filesystem;

std::string Deploy(const std::string& path) {
  return std::string(TRIAGED_SOURCE_DIR) + "/deploy/" + path;
}

// Every document of the manifests in a kustomization's directory (`resources` that are files),
// by kind (a kind may appear once).
std::map<std::string, YAML::Node> ManifestsIn(const std::string& dir) {
  std::map<std::string, YAML::Node> by_kind;
  for (const auto& entry : fs::directory_iterator(Deploy(dir))) {
    if (!entry.is_regular_file() || entry.path().filename() == "kustomization.yaml") continue;
    for (const YAML::Node& doc : YAML::LoadAllFromFile(entry.path().string())) {
      EXPECT_TRUE(doc["apiVersion"] && doc["kind"] && doc["metadata"]["name"]) << entry.path();
      EXPECT_FALSE(by_kind.count(doc["kind"].as<std::string>())) << entry.path();
      by_kind[doc["kind"].as<std::string>()] = doc;
    }
  }
  return by_kind;
}

// What `kubectl kustomize deploy/k8s/overlays/<overlay>` renders: the base and the overlay's own.
std::map<std::string, YAML::Node> Manifests(const std::string& overlay = "pod-monitor") {
  auto m = ManifestsIn("k8s/base");
  if (!overlay.empty()) m.merge(ManifestsIn("k8s/overlays/" + overlay));
  return m;
}

// The `resources` of a kustomization.yaml.
std::vector<std::string> Resources(const std::string& dir) {
  const YAML::Node k = YAML::LoadFile(Deploy(dir + "/kustomization.yaml"));
  std::vector<std::string> listed;
  for (const YAML::Node& r : k["resources"]) listed.push_back(r.as<std::string>());
  return listed;
}

std::vector<std::string> FilesIn(const std::string& dir) {
  std::vector<std::string> present;
  for (const auto& entry : fs::directory_iterator(Deploy(dir))) {
    if (entry.is_regular_file() && entry.path().filename() != "kustomization.yaml") {
      present.push_back(entry.path().filename());
    }
  }
  return present;
}

TEST(DeployKubernetes, EveryManifestIsListedInTheKustomization) {
  EXPECT_THAT(Resources("k8s"), ::testing::ElementsAre("base"));
  EXPECT_THAT(Resources("k8s/base"), ::testing::UnorderedElementsAreArray(FilesIn("k8s/base")));
  for (const std::string overlay : {"pod-monitor", "service-monitor"}) {
    std::vector<std::string> own = FilesIn("k8s/overlays/" + overlay);
    own.push_back("../../base");
    EXPECT_THAT(Resources("k8s/overlays/" + overlay), ::testing::UnorderedElementsAreArray(own));
  }
}

TEST(DeployKubernetes, EachOverlayAddsOneMonitorToABaseWithout) {
  auto base = ManifestsIn("k8s/base");
  EXPECT_FALSE(base.count("PodMonitor") || base.count("ServiceMonitor"));
  auto pod = ManifestsIn("k8s/overlays/pod-monitor");
  ASSERT_EQ(pod.size(), 1u);
  EXPECT_TRUE(pod.count("PodMonitor"));
  auto service = ManifestsIn("k8s/overlays/service-monitor");
  ASSERT_EQ(service.size(), 1u);
  EXPECT_TRUE(service.count("ServiceMonitor"));
}

TEST(DeployKubernetes, TheDeploymentProbesTheAdminServerAndRunsLockedDown) {
  auto m = Manifests();
  m.merge(ManifestsIn("k8s/overlays/service-monitor"));
  for (const char* kind : {"ConfigMap", "Deployment", "Service", "PodDisruptionBudget",
                           "PodMonitor", "ServiceMonitor"}) {
    EXPECT_TRUE(m.count(kind)) << kind;
  }
  const YAML::Node pod = m["Deployment"]["spec"]["template"]["spec"];
  const YAML::Node c = pod["containers"][0];
  EXPECT_EQ(c["livenessProbe"]["httpGet"]["path"].as<std::string>(), "/healthz");
  EXPECT_EQ(c["readinessProbe"]["httpGet"]["path"].as<std::string>(), "/readyz");
  EXPECT_EQ(c["ports"][0]["name"].as<std::string>(), "admin");
  EXPECT_EQ(c["ports"][0]["containerPort"].as<int>(), 9464);
  EXPECT_TRUE(c["resources"]["requests"]["memory"] && c["resources"]["limits"]["memory"]);
  EXPECT_TRUE(pod["securityContext"]["runAsNonRoot"].as<bool>());
  EXPECT_TRUE(c["securityContext"]["readOnlyRootFilesystem"].as<bool>());
  EXPECT_FALSE(c["securityContext"]["allowPrivilegeEscalation"].as<bool>());
  // The admin server binds 127.0.0.1 unless told otherwise: probes need it on the pod IP.
  bool admin_on_all = false;
  for (const YAML::Node& env : c["env"]) {
    if (env["name"].as<std::string>() == "TRIAGED_ADMIN") {
      admin_on_all = env["value"].as<std::string>() == "0.0.0.0:9464";
    }
  }
  EXPECT_TRUE(admin_on_all);
  // Grace for the flush on SIGTERM.
  EXPECT_GE(pod["terminationGracePeriodSeconds"].as<int>(), 30);
  // Selectors all find the pods.
  const YAML::Node labels = m["Deployment"]["spec"]["template"]["metadata"]["labels"];
  for (const char* kind : {"PodDisruptionBudget", "PodMonitor", "ServiceMonitor"}) {
    for (const auto& kv : m[kind]["spec"]["selector"]["matchLabels"]) {
      EXPECT_EQ(labels[kv.first.as<std::string>()].as<std::string>(), kv.second.as<std::string>())
          << kind;
    }
  }
  for (const auto& kv : m["Service"]["spec"]["selector"]) {
    EXPECT_EQ(labels[kv.first.as<std::string>()].as<std::string>(), kv.second.as<std::string>());
  }
  EXPECT_EQ(m["PodMonitor"]["spec"]["podMetricsEndpoints"][0]["port"].as<std::string>(), "admin");
  EXPECT_EQ(m["ServiceMonitor"]["spec"]["endpoints"][0]["port"].as<std::string>(), "admin");
  EXPECT_EQ(m["Service"]["spec"]["ports"][0]["targetPort"].as<std::string>(), "admin");
  // The rules are mounted where the container is told to read them.
  EXPECT_EQ(c["args"][2].as<std::string>(), "/etc/triaged/rules.yaml");
  EXPECT_EQ(c["volumeMounts"][0]["mountPath"].as<std::string>(), "/etc/triaged");
  EXPECT_EQ(pod["volumes"][0]["configMap"]["name"].as<std::string>(),
            m["ConfigMap"]["metadata"]["name"].as<std::string>());
}

// The root file system is read-only: every place the daemon writes is a writable volume. It
// writes the lock that picks its instance id in $TMPDIR (default /tmp, daemon/exactly_once.cc)
// and, when the rules set trace.store.path, its trace stores there.
TEST(DeployKubernetes, EveryPathTheDaemonWritesIsAWritableVolume) {
  auto m = Manifests();
  const YAML::Node pod = m["Deployment"]["spec"]["template"]["spec"];
  const YAML::Node c = pod["containers"][0];
  ASSERT_TRUE(c["securityContext"]["readOnlyRootFilesystem"].as<bool>());
  std::string tmpdir = "/tmp";
  for (const YAML::Node& env : c["env"]) {
    if (env["name"].as<std::string>() == "TMPDIR") tmpdir = env["value"].as<std::string>();
  }
  std::vector<std::string> written = {tmpdir};
  auto loaded = LoadConfigString(m["ConfigMap"]["data"]["rules.yaml"].as<std::string>(),
                                 "configmap/rules.yaml");
  ASSERT_TRUE(loaded.ok());
  if (!(*loaded)->trace_store_path.empty()) written.push_back((*loaded)->trace_store_path);
  for (const std::string& path : written) {
    std::string volume;
    for (const YAML::Node& mount : c["volumeMounts"]) {
      const std::string at = mount["mountPath"].as<std::string>();
      const bool read_only = mount["readOnly"] && mount["readOnly"].as<bool>();
      if (!read_only && (path == at || path.starts_with(at + "/"))) {
        volume = mount["name"].as<std::string>();
      }
    }
    ASSERT_FALSE(volume.empty()) << path << " is not on a writable volume";
    bool writable = false;
    for (const YAML::Node& v : pod["volumes"]) {
      if (v["name"].as<std::string>() == volume) {
        writable = v["emptyDir"].IsDefined() || v["persistentVolumeClaim"].IsDefined() ||
                   v["ephemeral"].IsDefined();
      }
    }
    EXPECT_TRUE(writable) << path << ": volume " << volume << " is not writable storage";
  }
}

// The value of the environment variable `name` in a container's or a service's env.
std::string EnvValue(const YAML::Node& env, const std::string& name) {
  if (env.IsMap()) return env[name] ? env[name].as<std::string>() : "";
  for (const YAML::Node& e : env) {
    if (e["name"].as<std::string>() == name) return e["value"].as<std::string>();
  }
  return "";
}

// The environment of a container told where its token is: the config reads it from there.
const char* TokenFileEnv(const char* name) {
  if (std::string_view(name) == "TRIAGED_ADMIN_TOKEN_FILE") return "/from/the/environment";
  return std::getenv(name);
}

TEST(DeployKubernetes, TheAdminTokenComesFromASecret) {
  auto m = Manifests();
  const YAML::Node pod = m["Deployment"]["spec"]["template"]["spec"];
  const YAML::Node c = pod["containers"][0];
  // Its admin listener is not loopback: routed items need the token.
  const fs::path token_file = EnvValue(c["env"], "TRIAGED_ADMIN_TOKEN_FILE");
  ASSERT_FALSE(token_file.empty());
  EXPECT_EQ(token_file.filename(), "token");  // the Secret's key
  std::string volume;
  for (const YAML::Node& mount : c["volumeMounts"]) {
    if (mount["mountPath"].as<std::string>() == token_file.parent_path().string()) {
      volume = mount["name"].as<std::string>();
    }
  }
  ASSERT_FALSE(volume.empty()) << "nothing is mounted at " << token_file.parent_path();
  bool from_secret = false;
  for (const YAML::Node& v : pod["volumes"]) {
    if (v["name"].as<std::string>() == volume) from_secret = v["secret"]["secretName"].IsDefined();
  }
  EXPECT_TRUE(from_secret) << volume;
  // The rules in the ConfigMap take admin.token_file from that variable.
  auto loaded = LoadConfigString(m["ConfigMap"]["data"]["rules.yaml"].as<std::string>(),
                                 "configmap/rules.yaml", &TokenFileEnv);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ((*loaded)->admin_token_file, "/from/the/environment");
}

TEST(DeployKubernetes, TheConfigMapRulesLoad) {
  auto m = Manifests();
  const std::string rules = m["ConfigMap"]["data"]["rules.yaml"].as<std::string>();
  auto loaded = LoadConfigString(rules, "configmap/rules.yaml");
  if (!loaded.ok()) {
    for (const ConfigError& e : loaded.error()) ADD_FAILURE() << e.ToString();
  }
  ASSERT_TRUE(loaded.ok());
  EXPECT_GE((*loaded)->rules->rules.size(), 1u);
}

TEST(DeployCompose, ServicesAndMountsExist) {
  const YAML::Node compose = YAML::LoadFile(Deploy("compose.yaml"));
  for (const char* s : {"kafka", "topics", "triaged", "prometheus", "grafana"}) {
    EXPECT_TRUE(compose["services"][s]) << s;
  }
  // Every bind mount's source exists (relative to deploy/).
  for (const auto& service : compose["services"]) {
    for (const YAML::Node& v : service.second["volumes"]) {
      const std::string spec = v.as<std::string>();
      const std::string source = spec.substr(0, spec.find(':'));
      EXPECT_TRUE(fs::exists(Deploy(source))) << service.first.as<std::string>() << ": " << spec;
    }
  }
  EXPECT_EQ(compose["services"]["triaged"]["build"]["dockerfile"].as<std::string>(),
            "deploy/Dockerfile");
  EXPECT_TRUE(fs::exists(Deploy("Dockerfile")));
  // The topics it creates are the ones the mounted config reads and writes.
  const std::string script = compose["services"]["topics"]["command"][0].as<std::string>();
  auto loaded = LoadConfigFile(Deploy("../config/examples/rules.yaml"));
  ASSERT_TRUE(loaded.ok());
  for (const std::string& topic : {(*loaded)->inputs.spans_topic, (*loaded)->inputs.feedback_topic,
                                   (*loaded)->dead_letter_topic}) {
    EXPECT_THAT(script, ::testing::HasSubstr(topic));
  }
  for (const DestinationSpec& d : (*loaded)->rules->destinations) {
    EXPECT_THAT(script, ::testing::HasSubstr(d.topic));
  }
}

TEST(DeployCompose, TheAdminTokenIsASecret) {
  const YAML::Node compose = YAML::LoadFile(Deploy("compose.yaml"));
  const YAML::Node triaged = compose["services"]["triaged"];
  const std::string token_file = EnvValue(triaged["environment"], "TRIAGED_ADMIN_TOKEN_FILE");
  ASSERT_FALSE(token_file.empty());
  bool mounted = false;
  for (const YAML::Node& secret : triaged["secrets"]) {
    const std::string name = secret.as<std::string>();
    mounted |= token_file == "/run/secrets/" + name && compose["secrets"][name]["file"];
  }
  EXPECT_TRUE(mounted) << token_file << " is a secret of the compose file";
  auto loaded = LoadConfigFile(Deploy("../config/examples/rules.yaml"), &TokenFileEnv);
  ASSERT_TRUE(loaded.ok());
  EXPECT_EQ((*loaded)->admin_token_file, "/from/the/environment");
}

TEST(DeployGrafana, ProvisioningFindsTheDashboardAndPrometheus) {
  const YAML::Node ds = YAML::LoadFile(Deploy("grafana/provisioning/datasources/prometheus.yaml"));
  EXPECT_EQ(ds["datasources"][0]["type"].as<std::string>(), "prometheus");
  const YAML::Node dash = YAML::LoadFile(Deploy("grafana/provisioning/dashboards/triaged.yaml"));
  const std::string path = dash["providers"][0]["options"]["path"].as<std::string>();
  const YAML::Node compose = YAML::LoadFile(Deploy("compose.yaml"));
  bool mounted = false;
  for (const YAML::Node& v : compose["services"]["grafana"]["volumes"]) {
    mounted |= v.as<std::string>().find(":" + path + "/triaged.json") != std::string::npos;
  }
  EXPECT_TRUE(mounted) << "the dashboard file is mounted where the provider looks: " << path;
}

}  // namespace
}  // namespace triaged
