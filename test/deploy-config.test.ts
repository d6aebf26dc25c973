/**
 * The deployment files under deploy/ and at the root are valid for the
 * tools that read them, and agree with the code: every file, build target
 * and variable they name exists, and every port is the one the service
 * listens on.
 */
import { spawnSync } from "node:child_process";
import {
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  afterAll,
  beforeAll,
  describe,
  expect,
  it,
  onTestFinished,
} from "vitest";
import { parse } from "yaml";
import { readLauncherConfig } from "../launcher/config.ts";
import { readRelayConfig } from "../relay/config.ts";
import { LocalValkey } from "../shared/local-valkey.ts";
import { VALKEY_URL_VARIABLES } from "../shared/valkey-config.ts";
import {
  HAPROXY_CONFIG_PATH,
  renderHaproxyConfig,
} from "./support/haproxy-process.ts";
import {
  PROMETHEUS_CONFIG_PATH,
  readPrometheusConfig,
  renderPrometheusConfig,
} from "./support/prometheus-process.ts";
import { startRelay } from "./support/relay-process.ts";
import { ROOT } from "./support/service-process.ts";
import { lookUpBinary } from "./support/system-binary.ts";

const haproxy = lookUpBinary("haproxy", "haproxy");
const promtool = lookUpBinary("promtool", "prometheus");

interface ComposeService {
  image?: string;
  build?: { context: string; target: string };
  environment?: Record<string, string>;
  ports?: string[];
  expose?: string[];
  volumes?: string[];
  container_name?: string;
  depends_on?: unknown;
}

const compose = parse(
  readFileSync(join(ROOT, "docker-compose.scale.yml"), "utf8"),
) as { services: Record<string, ComposeService> };
const services = compose.services;
const haproxyConfig = readFileSync(HAPROXY_CONFIG_PATH, "utf8");

function service(name: string): ComposeService {
  const found = services[name];
  if (!found)
    throw new Error(`docker-compose.scale.yml has no ${name} service`);
  return found;
}

/** Runs a checker; its output is the failure message when it exits non-zero. */
function check(binary: string, args: string[]) {
  const result = spawnSync(binary, args, { cwd: ROOT, encoding: "utf8" });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

interface DockerStage {
  name: string;
  from: string;
  lines: string[];
}

function dockerStages(): DockerStage[] {
  const text = readFileSync(join(ROOT, "Dockerfile"), "utf8");
  const stages: DockerStage[] = [];
  for (const line of text.split("\n")) {
    const from = /^FROM\s+(\S+)(?:\s+AS\s+(\S+))?/i.exec(line);
    if (from) {
      stages.push({ from: from[1]!, name: from[2] ?? "", lines: [] });
    } else if (!line.startsWith("#") && line.trim() !== "") {
      stages.at(-1)?.lines.push(line);
    }
  }
  return stages;
}

/** The CMD a target runs, looked up through the stages it is built on. */
function commandOf(target: string): string[] | undefined {
  const stages = dockerStages();
  let stage = stages.find((s) => s.name === target);
  while (stage) {
    const cmd = stage.lines.find((line) => line.startsWith("CMD "));
    if (cmd) return JSON.parse(cmd.slice(4)) as string[];
    const parent = stage.from;
    stage = stages.find((s) => s.name === parent);
  }
  return undefined;
}

/**
 * Variable names a service reads: the keys of the zod schemas in its
 * config module, plus the Valkey variables every service shares.
 */
function variablesReadBy(configModule: string): Set<string> {
  const names = new Set<string>(VALKEY_URL_VARIABLES);
  for (const file of [configModule, "shared/valkey-config.ts"]) {
    const text = readFileSync(join(ROOT, file), "utf8");
    for (const match of text.matchAll(/^ {2}([A-Z][A-Z0-9_]+): /gm)) {
      names.add(match[1]!);
    }
  }
  return names;
}

/** Container ports a service publishes, from `host:container` entries. */
function publishedContainerPorts(entry: ComposeService): number[] {
  return (entry.ports ?? []).map((port) => Number(port.split(":").at(-1)));
}

describe("haproxy.cfg", () => {
  it.skipIf(haproxy.skip)("passes haproxy -c as written", () => {
    const result = check(haproxy.path(), ["-c", "-f", HAPROXY_CONFIG_PATH]);
    expect(result.output).toContain("Configuration file is valid");
    expect(result.status, result.output).toBe(0);
  });

  it("checks /readyz, sticks sessions and outlasts Socket.IO's heartbeat", () => {
    expect(haproxyConfig).toMatch(
      /^\s+http-check send meth GET uri \/readyz /m,
    );
    expect(haproxyConfig).toMatch(/^\s+http-check expect status 200$/m);
    expect(haproxyConfig).toMatch(
      /^\s+cookie SERVERID insert indirect nocache/m,
    );
    expect(haproxyConfig).toMatch(/^\s+balance source$/m);

    // Socket.IO's defaults: ping every 25 s, 20 s to answer it.
    const seconds = (name: string) =>
      Number(
        new RegExp(`^\\s+timeout ${name} (\\d+)s$`, "m").exec(
          haproxyConfig,
        )?.[1],
      );
    expect(seconds("client")).toBeGreaterThanOrEqual(60);
    expect(seconds("server")).toBeGreaterThanOrEqual(60);
    expect(haproxyConfig).toMatch(/^\s+timeout tunnel 1h$/m);
  });

  it("finds compose's relays on the relay port, and renders for local relays", () => {
    const relayPort = readRelayConfig({}).port;
    expect(haproxyConfig).toMatch(
      new RegExp(
        `^\\s+server-template relay \\d+-\\d+ relay:${relayPort} `,
        "m",
      ),
    );

    const rendered = renderHaproxyConfig({
      viewerPort: 1,
      statsPort: 2,
      servers: [
        { name: "relay1", port: 3 },
        { name: "relay2", port: 4 },
      ],
    });
    expect(rendered).not.toMatch(/^\s+server-template/m);
    expect(rendered).toContain("    server relay2 127.0.0.1:4\n");
    // Nothing but the bind and server lines differs.
    const changed = rendered
      .split("\n")
      .filter((line) => !haproxyConfig.split("\n").includes(line));
    expect(changed).toEqual([
      "    bind 127.0.0.1:1",
      "    server relay1 127.0.0.1:3",
      "    server relay2 127.0.0.1:4",
      "    bind 127.0.0.1:2",
    ]);
  });
});

describe("prometheus.yml", () => {
  it.skipIf(promtool.skip)("passes promtool check config", () => {
    const result = check(promtool.path(), [
      "check",
      "config",
      PROMETHEUS_CONFIG_PATH,
    ]);
    expect(result.status, result.output).toBe(0);
  });

  it("scrapes compose's services on the ports they listen on", () => {
    const jobs = new Map(
      readPrometheusConfig().scrape_configs.map((job) => [job.job_name, job]),
    );
    expect(jobs.get("relay")?.dns_sd_configs).toEqual([
      expect.objectContaining({
        names: ["relay"],
        type: "A",
        port: readRelayConfig({}).port,
      }),
    ]);

    const launcherPort = readLauncherConfig({}).port;
    const statsPort = /^frontend stats\n\s+bind :(\d+)$/m.exec(
      haproxyConfig,
    )?.[1];
    const expected: Record<string, string> = {
      launcher: `launcher:${launcherPort}`,
      haproxy: `haproxy:${statsPort}`,
      valkey: "valkey-exporter:9121",
    };
    for (const [job, target] of Object.entries(expected)) {
      expect(jobs.get(job)?.static_configs, job).toEqual([
        { targets: [target] },
      ]);
      expect(
        services[target.split(":")[0]!],
        `${target} is a compose service`,
      ).toBeDefined();
    }
  });

  it.skipIf(promtool.skip)("stays valid when rendered for local relays", () => {
    const dir = mkdtempSync(join(tmpdir(), "codebay-promtool-"));
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const path = join(dir, "prometheus.yml");
    writeFileSync(path, renderPrometheusConfig(["127.0.0.1:1", "127.0.0.1:2"]));

    const result = check(promtool.path(), ["check", "config", path]);
    expect(result.status, result.output).toBe(0);
  });
});

describe("docker-compose.scale.yml", () => {
  it("runs Valkey with persistence, HAProxy, the launcher and Prometheus", () => {
    expect(service("valkey").image).toBe("valkey/valkey:8");
    expect(JSON.stringify(service("valkey"))).toContain('"--appendonly","yes"');
    expect(service("valkey").volumes?.some((v) => v.endsWith(":/data"))).toBe(
      true,
    );
    expect(service("haproxy").image).toBe("haproxy:3.0");
    expect(service("prometheus").image).toMatch(/^prom\/prometheus:/);
    expect(service("valkey-exporter").image).toMatch(
      /^oliver006\/redis_exporter:/,
    );
  });

  it("lets the relay scale: no host port and no container name", () => {
    const relay = service("relay");
    expect(relay.ports).toBeUndefined();
    expect(relay.container_name).toBeUndefined();
    expect(relay.expose).toEqual([String(readRelayConfig({}).port)]);

    for (const [name, entry] of Object.entries(services)) {
      expect(entry.container_name, name).toBeUndefined();
    }
  });

  it("publishes HAProxy's viewer port and the launcher's port", () => {
    const viewerPort = Number(
      /^frontend viewers\n\s+bind :(\d+)$/m.exec(haproxyConfig)?.[1],
    );
    expect(publishedContainerPorts(service("haproxy"))).toContain(viewerPort);
    expect(service("haproxy").ports).toContain(`${viewerPort}:${viewerPort}`);
    expect(publishedContainerPorts(service("launcher"))).toEqual([
      readLauncherConfig({}).port,
    ]);
  });

  it("mounts files that exist, where the images read them", () => {
    expect(service("haproxy").volumes).toContain(
      "./deploy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro",
    );
    expect(service("prometheus").volumes).toContain(
      "./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro",
    );
    for (const [name, entry] of Object.entries(services)) {
      for (const volume of entry.volumes ?? []) {
        const source = volume.split(":")[0]!;
        if (!source.startsWith(".")) continue;
        expect(existsSync(join(ROOT, source)), `${name}: ${source}`).toBe(true);
      }
    }
  });

  it("builds Dockerfile targets that run the service's executable", () => {
    const stageNames = dockerStages().map((stage) => stage.name);
    const built = Object.entries(services).filter(([, entry]) => entry.build);
    expect(built.map(([name]) => name).sort()).toEqual(["launcher", "relay"]);

    for (const [name, entry] of built) {
      expect(entry.build?.context).toBe(".");
      expect(stageNames, name).toContain(entry.build?.target);
      const command = commandOf(entry.build!.target);
      expect(command, name).toEqual([`bin/${name}`]);
      expect(existsSync(join(ROOT, command![0]!)), name).toBe(true);
    }
    expect(commandOf("builder")).toEqual(["bin/builder"]);
  });

  it("copies into the image only files that exist and are not ignored", () => {
    const ignored = readFileSync(join(ROOT, ".dockerignore"), "utf8")
      .split("\n")
      .filter((line) => line !== "" && !line.startsWith("#"));
    const copied = dockerStages()
      .flatMap((stage) => stage.lines)
      .filter((line) => line.startsWith("COPY ") && !line.includes("--from="))
      .flatMap((line) => line.split(/\s+/).slice(1, -1));

    expect(copied).toContain("package-lock.json");
    for (const source of copied) {
      expect(existsSync(join(ROOT, source)), source).toBe(true);
      expect(ignored, source).not.toContain(source);
    }
  });

  it("sets only variables the services read, with values they accept", () => {
    const relayEnv = service("relay").environment ?? {};
    const relayNames = variablesReadBy("relay/config.ts");
    for (const name of Object.keys(relayEnv)) {
      expect(relayNames.has(name), `relay reads ${name}`).toBe(true);
    }
    const relay = readRelayConfig(relayEnv);
    expect(relay.port).toBe(readRelayConfig({}).port);
    expect(relay.valkey.url).toBe("redis://valkey:6379");

    const launcherEnv = service("launcher").environment ?? {};
    const launcherNames = variablesReadBy("launcher/config.ts");
    for (const name of Object.keys(launcherEnv)) {
      expect(launcherNames.has(name), `launcher reads ${name}`).toBe(true);
    }
    const launcher = readLauncherConfig(launcherEnv);
    expect(launcher.port).toBe(readLauncherConfig({}).port);
    expect(launcher.valkey.url).toBe("redis://valkey:6379");

    expect(service("valkey-exporter").environment?.REDIS_ADDR).toBe(
      "redis://valkey:6379",
    );
  });
});

describe("Grafana dashboard", () => {
  let valkey: LocalValkey;

  beforeAll(async () => {
    valkey = await LocalValkey.start();
  });

  afterAll(async () => {
    await valkey?.stop();
  });

  it("queries only metrics a running relay exposes", async () => {
    const dashboard = JSON.parse(
      readFileSync(
        join(ROOT, "deploy", "grafana", "relay-dashboard.json"),
        "utf8",
      ),
    ) as { uid: string; panels: Array<{ targets?: Array<{ expr: string }> }> };
    expect(dashboard.uid).toBe("codebay-relays");

    const exprs = dashboard.panels.flatMap((p) =>
      (p.targets ?? []).map((t) => t.expr),
    );
    const queried = new Set(
      exprs.flatMap((expr) => expr.match(/\brelay_[a-z_]+\b/g) ?? []),
    );
    for (const required of [
      "relay_connected_clients",
      "relay_lines_received_total",
      "relay_lines_delivered_total",
      "relay_delivery_latency_seconds_bucket",
      "relay_channels_owned",
      "relay_valkey_up",
      "relay_slow_viewer_disconnects_total",
    ]) {
      expect(queried, required).toContain(required);
    }

    // Labelled counters print no sample until first counted, so names come
    // from the TYPE lines, with a histogram's series derived from its name.
    const relay = await startRelay(valkey.url);
    const text = await fetch(`${relay.url}/metrics`).then((r) => r.text());
    const exposed = new Set<string>();
    for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
      exposed.add(name!);
      if (type === "histogram") {
        for (const suffix of ["_bucket", "_sum", "_count"])
          exposed.add(`${name}${suffix}`);
      }
    }
    expect([...queried].filter((name) => !exposed.has(name))).toEqual([]);
  });
});
