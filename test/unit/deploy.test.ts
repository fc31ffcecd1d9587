import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import {
  buildConfig,
  ENV_PREFIX,
  ORIGIN_ENV_PREFIX,
  ORIGIN_SETTINGS,
  SAMPLES_SETTINGS,
} from "../../src/config/config.ts";
import { PROXY_SETTINGS } from "../../src/config/proxy-settings.ts";
import { bytes } from "../../src/config/parsers.ts";
import { loadSettings } from "../../src/config/settings.ts";
import type { SettingTable } from "../../src/config/settings.ts";
import { parseYamlSubset } from "../helpers/yaml-subset.ts";
import type { YamlValue } from "../helpers/yaml-subset.ts";

/**
 * The deployment files (Dockerfile, compose.yaml, deploy/kubernetes/) against the CLI they configure: every IMAGIKA_*
 * variable and flag exists and has a value the proxy accepts, ports and probe paths agree, and the limits that must
 * move together (memory, grace periods, idle timeouts) do. scripts/container-smoke.sh runs the image itself.
 */
const REPO_ROOT = resolve(fileURLToPath(new URL("../..", import.meta.url)));
const K8S_DIR = join(REPO_ROOT, "deploy/kubernetes");
/** Idle timeout of the balancer's pooled connections assumed in configmap.yaml (ingress-nginx and AWS ALB: 60 s). */
const BALANCER_IDLE_TIMEOUT_MS = 60_000;
const MiB = 1024 * 1024;

type YamlMap = { [key: string]: YamlValue };

function read(path: string): string {
  return readFileSync(join(REPO_ROOT, path), "utf8");
}

function isMap(value: YamlValue | undefined): value is YamlMap {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function map(value: YamlValue | undefined, where: string): YamlMap {
  if (!isMap(value)) throw new Error(`${where}: expected a mapping, got ${JSON.stringify(value)}`);
  return value;
}

function list(value: YamlValue | undefined, where: string): YamlValue[] {
  if (!Array.isArray(value)) throw new Error(`${where}: expected a sequence, got ${JSON.stringify(value)}`);
  return value;
}

function text(value: YamlValue | undefined, where: string): string {
  if (typeof value !== "string") throw new Error(`${where}: expected a string, got ${JSON.stringify(value)}`);
  return value;
}

function num(value: YamlValue | undefined, where: string): number {
  if (typeof value !== "number") throw new Error(`${where}: expected a number, got ${JSON.stringify(value)}`);
  return value;
}

/** Follows a path of keys and indices: at(deployment, "spec", "template", "spec"). */
function at(value: YamlValue | undefined, ...path: (string | number)[]): YamlValue | undefined {
  let current = value;
  for (const step of path) {
    if (typeof step === "number") current = Array.isArray(current) ? current[step] : undefined;
    else current = isMap(current) ? current[step] : undefined;
  }
  return current;
}

/** Every document of every resource kustomization.yaml lists. */
function k8sDocuments(): YamlMap[] {
  const kustomization = map(parseYamlSubset(read("deploy/kubernetes/kustomization.yaml"))[0], "kustomization");
  return list(kustomization.resources, "resources").flatMap((file) => {
    const name = text(file, "resources[]");
    return parseYamlSubset(read(`deploy/kubernetes/${name}`), name).map((doc) => map(doc, name));
  });
}

function k8s(kind: string, name: string): YamlMap {
  const found = k8sDocuments().filter((doc) => doc.kind === kind && at(doc, "metadata", "name") === name);
  expect(found, `${kind}/${name}`).toHaveLength(1);
  return found[0] ?? {};
}

function proxyContainer(): YamlMap {
  const containers = list(at(k8s("Deployment", "imagika"), "spec", "template", "spec", "containers"), "containers");
  return map(
    containers.find((c) => at(c, "name") === "imagika"),
    "container imagika",
  );
}

/** KEY=value lines of an env file (kustomize's rules: # comments and blank lines skipped, no quoting). */
function readEnvFile(path: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of read(path).split("\n")) {
    if (line.trim() === "" || line.trimStart().startsWith("#")) continue;
    const eq = line.indexOf("=");
    out[line.slice(0, eq)] = line.slice(eq + 1);
  }
  return out;
}

/** The proxy's environment in Kubernetes: the ConfigMap, the Secret's keys (example values) and the literal env. */
function k8sProxyEnv(): Record<string, string> {
  const data = map(k8s("ConfigMap", "imagika-config").data, "imagika-config.data");
  const env: Record<string, string> = {};
  for (const [name, value] of Object.entries(data)) env[name] = text(value, `imagika-config.data.${name}`);
  for (const name of Object.keys(readEnvFile("deploy/kubernetes/secrets.env.example"))) env[name] = "";
  for (const entry of list(proxyContainer().env, "env")) {
    const name = text(at(entry, "name"), "env[].name");
    env[name] = text(at(entry, "value"), `env ${name} (a literal string: Kubernetes refuses other types)`);
  }
  return env;
}

function composeService(name: string): YamlMap {
  const compose = map(parseYamlSubset(read("compose.yaml"), "compose.yaml")[0], "compose.yaml");
  return map(at(compose, "services", name), `services.${name}`);
}

function composeEnv(service: string): Record<string, string> {
  const env: Record<string, string> = {};
  const environment = at(composeService(service), "environment");
  if (environment === undefined) return env;
  for (const [name, value] of Object.entries(map(environment, `${service}.environment`)))
    env[name] = text(
      value,
      `${service}.environment.${name} (quote it: compose and YAML 1.1 read false, 5000 as non-strings)`,
    );
  return env;
}

/** `instruction args` lines of the Dockerfile, continuation lines joined. */
function dockerfile(): { instruction: string; args: string }[] {
  const joined = read("Dockerfile").replace(/\\\n/g, " ");
  return joined
    .split("\n")
    .filter((line) => line.trim() !== "" && !line.trimStart().startsWith("#"))
    .map((line) => {
      const [instruction = "", ...rest] = line.trim().split(/\s+/);
      return { instruction: instruction.toUpperCase(), args: rest.join(" ") };
    });
}

function lastInstruction(name: string): string {
  const found = dockerfile().filter((line) => line.instruction === name);
  expect(found.length, `Dockerfile ${name}`).toBeGreaterThan(0);
  return found.at(-1)?.args ?? "";
}

/** The runtime stage's ENV pairs (KEY=value, several per instruction). */
function dockerEnv(): Record<string, string> {
  const env: Record<string, string> = {};
  for (const line of dockerfile().filter((l) => l.instruction === "ENV")) {
    for (const pair of line.args.split(/\s+/)) {
      const eq = pair.indexOf("=");
      env[pair.slice(0, eq)] = pair.slice(eq + 1);
    }
  }
  return env;
}

const COMMAND_TABLES: Record<string, { table: SettingTable; envPrefix: string }> = {
  proxy: { table: PROXY_SETTINGS, envPrefix: ENV_PREFIX },
  origin: { table: ORIGIN_SETTINGS, envPrefix: ORIGIN_ENV_PREFIX },
  samples: { table: SAMPLES_SETTINGS, envPrefix: "IMAGIKA_SAMPLES_" },
};

/** Each `bin/imagika.js <command> <flags>` in a shell command line or an argv, with its flags. */
function imagikaInvocations(argvOrShell: readonly string[]): { command: string; flags: string[] }[] {
  const words = argvOrShell.flatMap((arg) => arg.split(/\s+/)).filter((word) => word !== "");
  const out: { command: string; flags: string[] }[] = [];
  words.forEach((word, index) => {
    if (!word.endsWith("bin/imagika.js")) return;
    const rest = words.slice(index + 1);
    const end = rest.findIndex((w) => /^(?:&&|\|\||;|\|)$/.test(w) || w.endsWith(";"));
    const args =
      end < 0 ? rest : [...rest.slice(0, end), ...(rest[end]?.endsWith(";") ? [rest[end].slice(0, -1)] : [])];
    out.push({ command: args[0] ?? "", flags: args.slice(1) });
  });
  return out;
}

/** Flags and environment through the real settings loader: throws ConfigError naming every bad one. */
function loadFor(command: string, flags: readonly string[], env: Record<string, string>): Record<string, unknown> {
  const spec = COMMAND_TABLES[command];
  if (spec === undefined) throw new Error(`unknown imagika command '${command}'`);
  return loadSettings(spec.table, { env, argv: flags, envPrefix: spec.envPrefix }).values;
}

function envNames(table: SettingTable, prefix: string): Set<string> {
  return new Set(Object.values(table).map((spec) => prefix + spec.env));
}

/** Kubernetes quantities (1Gi, 512Mi, 1G) and compose sizes (1g, 512m) in bytes. */
function quantityBytes(raw: string): number {
  const match = /^(\d+(?:\.\d+)?)(Ki|Mi|Gi|Ti|k|M|G|T|b|kb?|mb?|gb?)?$/.exec(raw);
  if (!match) throw new Error(`not a quantity: ${raw}`);
  const units: Record<string, number> = {
    "": 1,
    b: 1,
    Ki: 1024,
    k: 1024,
    kb: 1024,
    Mi: MiB,
    m: MiB,
    mb: MiB,
    Gi: 1024 * MiB,
    g: 1024 * MiB,
    gb: 1024 * MiB,
    Ti: 1024 ** 4,
    K: 1e3,
    M: 1e6,
    G: 1e9,
    T: 1e12,
  };
  return Number(match[1]) * (units[match[2] ?? ""] ?? Number.NaN);
}

function byteSetting(raw: string | undefined): number {
  const parsed = bytes(1)(raw ?? "");
  if (!parsed.ok) throw new Error(`not a byte size: ${raw}`);
  return parsed.value;
}

describe("deployment files", () => {
  it("kustomization.yaml lists every manifest beside it, and each reads as YAML", () => {
    const kustomization = map(parseYamlSubset(read("deploy/kubernetes/kustomization.yaml"))[0], "kustomization");
    const listed = list(kustomization.resources, "resources").map((r) => text(r, "resources[]"));
    const present = readdirSync(K8S_DIR).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml");
    expect([...listed].sort()).toEqual([...present].sort());
    const kinds = k8sDocuments().map((doc) => `${text(doc.kind, "kind")}/${text(at(doc, "metadata", "name"), "name")}`);
    expect(kinds.sort()).toEqual([
      "ConfigMap/imagika-config",
      "Deployment/imagika",
      "Deployment/imagika-redis",
      "HorizontalPodAutoscaler/imagika",
      "PodDisruptionBudget/imagika",
      "Service/imagika",
      "Service/imagika-redis",
    ]);
    // The Secret is generated from secrets.env (not in git), with the keys secrets.env.example names.
    const generator = list(kustomization.secretGenerator, "secretGenerator");
    expect(at(generator, 0, "name")).toBe("imagika-secrets");
    expect(at(generator, 0, "envs")).toEqual(["secrets.env"]);
    expect(read(".gitignore").split("\n")).toContain("deploy/kubernetes/secrets.env");
    expect(Object.keys(readEnvFile("deploy/kubernetes/secrets.env.example")).sort()).toEqual([
      "IMAGIKA_ADMIN_TOKEN",
      "IMAGIKA_SIGNING_KEY",
    ]);
  });

  it("sets only IMAGIKA_* variables the proxy has, with values it accepts", () => {
    const proxyNames = envNames(PROXY_SETTINGS, ENV_PREFIX);
    for (const [where, env] of [
      ["deploy/kubernetes", k8sProxyEnv()],
      ["compose.yaml proxy", composeEnv("proxy")],
    ] as const) {
      const unknown = Object.keys(env).filter((name) => name.startsWith("IMAGIKA_") && !proxyNames.has(name));
      expect(unknown, `${where}: not settings of imagika proxy`).toEqual([]);
      const flags = imagikaInvocations(JSON.parse(lastInstruction("CMD")) as string[])[0]?.flags ?? [];
      const values = loadFor("proxy", flags, env);
      // The whole configuration, memory plan included, as the container would build it (no cgroup: the literal).
      expect(() => buildConfig(values as Parameters<typeof buildConfig>[0], { cgroupLimit: undefined })).not.toThrow();
    }
  });

  it("the image's command runs imagika proxy with existing flags, in-process (Node flags and jemalloc in place, as bench:memory's shipped configuration runs them)", () => {
    const cmd = JSON.parse(lastInstruction("CMD")) as string[];
    const launcher = read("bin/imagika.js");
    const nodeFlags = JSON.parse(/const NODE_FLAGS = (\[[^\]]*\]);/.exec(launcher)?.[1] ?? "null") as string[];
    const jemallocConf = /const JEMALLOC_CONF = "([^"]+)";/.exec(launcher)?.[1];
    const jemallocPaths = /const JEMALLOC_PATHS = \[([^\]]*)\]/.exec(launcher)?.[1] ?? "";
    expect(cmd[0]).toBe("node");
    expect(cmd.slice(1, 1 + nodeFlags.length).sort()).toEqual([...nodeFlags].sort());
    const invocations = imagikaInvocations(cmd);
    expect(invocations.map((i) => i.command)).toEqual(["proxy"]);
    expect(loadFor("proxy", invocations[0]?.flags ?? [], {}).host).toBe("0.0.0.0");
    const env = dockerEnv();
    expect(env.LD_PRELOAD).toMatch(/libjemalloc\.so\.2$/);
    expect(jemallocPaths).toContain(`"${env.LD_PRELOAD}"`);
    expect(env.MALLOC_CONF).toBe(jemallocConf);
    // ...and so does `npm run bench:memory`'s "shipped" configuration.
    const memoryBench = read("bench/memory.ts");
    expect(/const SHIPPED_MALLOC_CONF = "([^"]+)";/.exec(memoryBench)?.[1]).toBe(jemallocConf);
    const benchFlags = JSON.parse(
      /const SHIPPED_NODE_FLAGS = (\[[^\]]*\]);/.exec(memoryBench)?.[1] ?? "null",
    ) as string[];
    expect(benchFlags).toEqual(nodeFlags);
  });

  it("compose.yaml's origin runs imagika samples and imagika origin with existing flags, where the proxy looks", () => {
    const origin = composeService("origin");
    const command = list(origin.command, "origin.command").map((c) => text(c, "origin.command[]"));
    const invocations = imagikaInvocations(command);
    expect(invocations.map((i) => i.command)).toEqual(["samples", "origin"]);
    for (const { command: name, flags } of invocations) loadFor(name, flags, composeEnv("origin"));
    const originFlags = loadFor("origin", invocations[1]?.flags ?? [], {});
    const originUrl = new URL(composeEnv("proxy").IMAGIKA_ORIGIN ?? "");
    expect(originUrl.hostname).toBe("origin");
    expect(Number(originUrl.port)).toBe(originFlags.port);
    expect(originFlags.host).toBe("0.0.0.0");
    expect(list(origin.volumes, "origin.volumes")).toContain(`samples:${String(originFlags.dir)}`);
  });

  it("uses one port everywhere: IMAGIKA_PORT, EXPOSE, containerPort, the Service, the probes and compose", () => {
    const port = Number(k8sProxyEnv().IMAGIKA_PORT ?? PROXY_SETTINGS.port.default);
    expect(Number(lastInstruction("EXPOSE"))).toBe(port);
    const ports = list(proxyContainer().ports, "ports");
    expect(ports).toEqual([{ name: "http", containerPort: port }]);
    const service = k8s("Service", "imagika");
    expect(at(service, "spec", "ports", 0, "targetPort")).toBe("http");
    for (const probe of ["readinessProbe", "livenessProbe", "startupProbe"])
      expect(at(proxyContainer(), probe, "httpGet", "port"), probe).toBe("http");
    const composePort = Number(composeEnv("proxy").IMAGIKA_PORT ?? PROXY_SETTINGS.port.default);
    const published = list(composeService("proxy").ports, "proxy.ports").map((p) => text(p, "ports[]"));
    expect(published.map((p) => Number(p.split(":").at(-1)))).toEqual([composePort]);
    // Redis: the URL names the Service (Kubernetes) and the service (compose), on its port.
    const k8sRedis = new URL(k8sProxyEnv().IMAGIKA_REDIS_URL ?? "");
    const redisService = k8s("Service", k8sRedis.hostname);
    expect(at(redisService, "spec", "ports", 0, "port")).toBe(Number(k8sRedis.port));
    expect(new URL(composeEnv("proxy").IMAGIKA_REDIS_URL ?? "").hostname).toBe("redis");
    expect(at(composeService("redis"), "image")).toBe("redis:7");
  });

  it("probes readiness on /readyz and liveness on /healthz (the image's HEALTHCHECK too)", () => {
    const container = proxyContainer();
    expect(at(container, "readinessProbe", "httpGet", "path")).toBe("/readyz");
    expect(at(container, "livenessProbe", "httpGet", "path")).toBe("/healthz");
    expect(at(container, "startupProbe", "httpGet", "path")).toBe("/healthz");
    expect(lastInstruction("HEALTHCHECK")).toContain("/healthz");
  });

  it("gives the proxy 90% of the container's memory limit, as it takes by itself from a cgroup", () => {
    const container = proxyContainer();
    const k8sLimit = quantityBytes(text(at(container, "resources", "limits", "memory"), "limits.memory"));
    const k8sSetting = byteSetting(k8sProxyEnv().IMAGIKA_MEMORY_LIMIT);
    const composeLimit = quantityBytes(text(composeService("proxy").mem_limit, "proxy.mem_limit"));
    const composeSetting = byteSetting(composeEnv("proxy").IMAGIKA_MEMORY_LIMIT);
    for (const [limit, setting] of [
      [k8sLimit, k8sSetting],
      [composeLimit, composeSetting],
    ] as const) {
      expect(setting).toBeLessThanOrEqual(limit * 0.9);
      expect(setting).toBeGreaterThan(limit * 0.9 - MiB);
    }
    expect(at(container, "resources", "requests", "memory")).toBe(at(container, "resources", "limits", "memory"));
  });

  it("lets in-flight requests finish: grace periods cover the preStop sleep and --shutdown-timeout-ms", () => {
    const pod = map(at(k8s("Deployment", "imagika"), "spec", "template", "spec"), "pod spec");
    const preStop = list(at(proxyContainer(), "lifecycle", "preStop", "exec", "command"), "preStop");
    expect(preStop[0]).toBe("sleep");
    const sleepSeconds = Number(preStop[1]);
    const shutdownSeconds = Number(loadFor("proxy", [], k8sProxyEnv()).shutdownTimeoutMs) / 1000;
    const grace = num(pod.terminationGracePeriodSeconds, "terminationGracePeriodSeconds");
    expect(sleepSeconds).toBeGreaterThan(0);
    expect(grace).toBeGreaterThanOrEqual(sleepSeconds + shutdownSeconds + 1);
    const composeShutdownSeconds = Number(loadFor("proxy", [], composeEnv("proxy")).shutdownTimeoutMs) / 1000;
    const composeGrace = /^(\d+)s$/.exec(text(composeService("proxy").stop_grace_period, "stop_grace_period"));
    expect(Number(composeGrace?.[1])).toBeGreaterThanOrEqual(composeShutdownSeconds + 1);
  });

  it("behind the CDN and ingress: trusts X-Forwarded-For hops and outlasts the balancer's idle timeout", () => {
    const settings = loadFor("proxy", [], k8sProxyEnv());
    expect(settings.trustProxy).toBeGreaterThanOrEqual(1);
    expect(settings.keepAliveTimeoutMs).toBeGreaterThan(BALANCER_IDLE_TIMEOUT_MS);
    expect(settings.maxConnectionsPerClient).toBeGreaterThan(PROXY_SETTINGS.maxConnectionsPerClient.default);
    // compose.yaml publishes the proxy itself: both are set (and said why) rather than left to defaults.
    const compose = composeEnv("proxy");
    expect(Object.keys(compose)).toEqual(
      expect.arrayContaining(["IMAGIKA_TRUST_PROXY", "IMAGIKA_KEEP_ALIVE_TIMEOUT_MS"]),
    );
    expect(loadFor("proxy", [], compose).trustProxy).toBe(0);
  });

  it("runs as the image's non-root user and selects the Deployment's pods from the Service, HPA and PDB", () => {
    const user = lastInstruction("USER");
    expect(user).toMatch(/^[1-9]\d*:\d+$/); // numeric: runAsNonRoot can only verify a number
    const pod = map(at(k8s("Deployment", "imagika"), "spec", "template"), "pod template");
    expect(at(pod, "spec", "securityContext", "runAsNonRoot")).toBe(true);
    expect(num(at(pod, "spec", "securityContext", "runAsUser"), "runAsUser")).toBe(Number(user.split(":")[0]));
    const labels = map(at(pod, "metadata", "labels"), "pod labels");
    expect(at(k8s("Deployment", "imagika"), "spec", "selector", "matchLabels")).toEqual(labels);
    expect(at(k8s("Service", "imagika"), "spec", "selector")).toEqual(labels);
    expect(at(k8s("PodDisruptionBudget", "imagika"), "spec", "selector", "matchLabels")).toEqual(labels);
    expect(at(k8s("HorizontalPodAutoscaler", "imagika"), "spec", "scaleTargetRef")).toEqual({
      apiVersion: "apps/v1",
      kind: "Deployment",
      name: "imagika",
    });
    expect(at(k8s("Deployment", "imagika"), "spec", "replicas")).toBeUndefined(); // the HPA owns it
  });
});

describe("parseYamlSubset", () => {
  it("reads mappings, sequences, quoted and plain scalars as YAML 1.2's core schema does", () => {
    const source = [
      "# comment",
      "a: 1 # trailing comment",
      'b: "x: #1"',
      "c: 'it''s'",
      "d: [x, \"y\", '', 2]",
      "e:",
      "- k: v",
      "  l: true",
      "- plain text",
      "f: {}",
      "g: 1Gi",
      "---",
      "- 0.5",
    ].join("\n");
    expect(parseYamlSubset(source)).toEqual([
      { a: 1, b: "x: #1", c: "it's", d: ["x", "y", "", 2], e: [{ k: "v", l: true }, "plain text"], f: {}, g: "1Gi" },
      [0.5],
    ]);
  });

  it("refuses what it does not read rather than reading it differently", () => {
    for (const source of [
      "a: &anchor 1",
      "a: |\n  text",
      "a: !tag x",
      "a: {b: 1}",
      "a:\n\t- x",
      "a: [1,\n 2]",
      "a: 1\na: 2",
    ])
      expect(() => parseYamlSubset(source), source).toThrow();
  });
});
