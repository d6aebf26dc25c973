/**
 * The ECS runner, driven through the launcher's HTTP API with the real AWS
 * SDK.
 *
 * AWS cannot be reached from where these tests run, so the SDK is pointed
 * (AWS_ENDPOINT_URL_ECS) at EcsStandIn: a small HTTP server on a loopback
 * port that speaks the ECS wire protocol, AWS JSON 1.1 (`POST /` with
 * `X-Amz-Target: AmazonEC2ContainerServiceV20141113.<Action>`). It is a
 * stand-in for AWS, not a model of it: it records each request the SDK
 * really sent and answers as each test scripts. What ECS itself does with
 * such a request (placing the task, running the container) is not tested
 * here.
 */
import { once } from "node:events";
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import {
  beforeAll,
  beforeEach,
  describe,
  expect,
  it,
  onTestFinished,
} from "vitest";
import { LocalValkey } from "../shared/local-valkey.ts";
import { TestLauncher } from "./support/launcher-harness.ts";

const TARGET_PREFIX = "AmazonEC2ContainerServiceV20141113.";

interface StandInRequest {
  action: string;
  headers: IncomingHttpHeaders;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
}

interface StandInAnswer {
  status: number;
  body: unknown;
}

type Handler = (body: unknown) => StandInAnswer;

/** A loopback stand-in for the ECS API; see the file's doc comment. */
class EcsStandIn {
  readonly requests: StandInRequest[] = [];
  private handlers = new Map<string, Handler>();

  private constructor(private readonly server: Server) {}

  static async start(): Promise<EcsStandIn> {
    const server = createServer();
    const standIn = new EcsStandIn(server);
    server.on("request", (req, res) => {
      const chunks: Buffer[] = [];
      req.on("data", (chunk: Buffer) => chunks.push(chunk));
      req.on("end", () => {
        const answer = standIn.handle(
          req.method ?? "",
          req.url ?? "",
          req.headers,
          Buffer.concat(chunks).toString("utf8"),
        );
        res.writeHead(answer.status, {
          "content-type": "application/x-amz-json-1.1",
        });
        res.end(JSON.stringify(answer.body));
      });
    });

    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    return standIn;
  }

  get url(): string {
    const address = this.server.address();
    const port = typeof address === "object" && address ? address.port : 0;
    return `http://127.0.0.1:${port}`;
  }

  /** Answers every later call of `action` with `handler`. */
  on(action: string, handler: Handler): void {
    this.handlers.set(action, handler);
  }

  reset(): void {
    this.requests.length = 0;
    this.handlers.clear();
  }

  calls(action: string): StandInRequest[] {
    return this.requests.filter((r) => r.action === action);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }

  private handle(
    method: string,
    url: string,
    headers: IncomingHttpHeaders,
    text: string,
  ): StandInAnswer {
    const target = String(headers["x-amz-target"] ?? "");
    if (method !== "POST" || url !== "/" || !target.startsWith(TARGET_PREFIX)) {
      return { status: 400, body: { __type: "UnknownOperationException" } };
    }

    const action = target.slice(TARGET_PREFIX.length);
    const body: unknown = JSON.parse(text);
    this.requests.push({ action, headers, body });

    const handler = this.handlers.get(action);
    if (!handler) {
      return {
        status: 400,
        body: { __type: "ClientException", message: "not scripted" },
      };
    }
    return handler(body);
  }
}

const TASK_ARN =
  "arn:aws:ecs:eu-west-1:123456789012:task/builds/0123456789abcdef0123456789abcdef";

const ECS_ENV = {
  RUNNER: "ecs",
  ECS_CLUSTER: "builds",
  ECS_TASK_DEFINITION: "builder:7",
  ECS_SUBNETS: "subnet-0a1b2c, subnet-3d4e5f",
  ECS_SECURITY_GROUPS: "sg-0123abcd",
  ECS_ASSIGN_PUBLIC_IP: "ENABLED",
  ECS_CONTAINER_NAME: "builder",
  AWS_REGION: "eu-west-1",
  ECS_MAX_ATTEMPTS: "2",
  // Background polling stays out of the way; GET describes on demand.
  ECS_POLL_INTERVAL_MS: "3600000",
};

const CREDENTIALS = {
  accessKeyId: "AKIDSTANDIN",
  secretAccessKey: "stand-in-secret",
};

const startedTask = (lastStatus: string) => () => ({
  status: 200,
  body: { tasks: [{ taskArn: TASK_ARN, lastStatus }], failures: [] },
});

/** A DescribeTasks answer; times are epoch seconds, as AWS sends them. */
const describedTask =
  (lastStatus: string, extra: Record<string, unknown> = {}) =>
  () => ({
    status: 200,
    body: {
      tasks: [
        {
          taskArn: TASK_ARN,
          lastStatus,
          startedAt: 1_700_000_010.5,
          containers: [{ name: "sidecar", exitCode: 0 }],
          ...extra,
        },
      ],
      failures: [],
    },
  });

let valkey: LocalValkey;
let standIn: EcsStandIn;
let launcher: TestLauncher;

// Each hook returns its clean-up, which vitest runs in reverse order.
beforeAll(async () => {
  valkey = await LocalValkey.start();
  return () => valkey.stop();
});

beforeAll(async () => {
  standIn = await EcsStandIn.start();
  return () => standIn.stop();
});

beforeAll(async () => {
  launcher = await TestLauncher.start(
    valkey,
    { ...ECS_ENV, AWS_ENDPOINT_URL_ECS: standIn.url },
    { ecsCredentials: CREDENTIALS },
  );
  return () => launcher.close();
});

beforeEach(() => standIn.reset());

const request = {
  gitUrl: "https://example.com/acme/site.git",
  ref: "main",
  startDir: "web",
  installCommand: "npm ci",
  buildCommand: "npm run build",
};

describe("ECS runner", () => {
  it("runs a build as one Fargate task with the build's environment", async () => {
    standIn.on("RunTask", startedTask("PROVISIONING"));

    const answer = await launcher.request(
      "POST",
      "/projects/site/builds",
      request,
    );

    expect(answer.status).toBe(202);
    const { buildId } = answer.json;
    expect(answer.json).toEqual({
      buildId: expect.any(String),
      slug: "site",
      channel: "logs:site",
      status: "queued",
    });

    const [call, ...more] = standIn.calls("RunTask");
    expect(more).toEqual([]);
    expect(call!.headers["content-type"]).toBe("application/x-amz-json-1.1");
    expect(call!.headers.authorization).toMatch(
      /^AWS4-HMAC-SHA256 Credential=AKIDSTANDIN\/\d{8}\/eu-west-1\/ecs\/aws4_request/,
    );
    expect(call!.body).toEqual({
      cluster: "builds",
      taskDefinition: "builder:7",
      launchType: "FARGATE",
      count: 1,
      clientToken: buildId,
      startedBy: "codebay-launcher",
      networkConfiguration: {
        awsvpcConfiguration: {
          subnets: ["subnet-0a1b2c", "subnet-3d4e5f"],
          securityGroups: ["sg-0123abcd"],
          assignPublicIp: "ENABLED",
        },
      },
      overrides: {
        containerOverrides: [
          { name: "builder", environment: expect.any(Array) },
        ],
      },
    });

    const environment = Object.fromEntries(
      call!.body.overrides.containerOverrides[0].environment.map(
        (v: { name: string; value: string }) => [v.name, v.value],
      ),
    );
    expect(environment).toEqual({
      PROJECT_ID: "site",
      GIT_REPOSITORY_URL: "https://example.com/acme/site.git",
      GIT_REF: "main",
      START_DIR: "web",
      BUILD_ID: buildId,
      INSTALL_COMMAND: "npm ci",
      BUILD_COMMAND: "npm run build",
      REDIS_URL: valkey.url,
      LOG_LEVEL: "debug",
    });
  });

  it("follows the task through DescribeTasks to its container's exit code", async () => {
    standIn.on("RunTask", startedTask("PENDING"));
    const posted = await launcher.request("POST", "/projects/site/builds", {
      gitUrl: request.gitUrl,
    });
    const { buildId } = posted.json;

    standIn.on("DescribeTasks", describedTask("RUNNING"));
    const running = await launcher.request("GET", `/builds/${buildId}`);

    expect(running.json.status).toBe("running");
    expect(running.json.startedAt).toBe("2023-11-14T22:13:30.500Z");
    expect(standIn.calls("DescribeTasks")[0]!.body).toEqual({
      cluster: "builds",
      tasks: [TASK_ARN],
    });

    standIn.on(
      "DescribeTasks",
      describedTask("STOPPED", {
        stoppedAt: 1_700_000_070,
        containers: [
          { name: "sidecar", exitCode: 1 },
          { name: "builder", exitCode: 0 },
        ],
      }),
    );
    const ended = await launcher.request("GET", `/builds/${buildId}`);

    expect(ended.json).toEqual({
      buildId,
      slug: "site",
      channel: "logs:site",
      status: "succeeded",
      runner: "ecs",
      createdAt: expect.any(String),
      startedAt: "2023-11-14T22:13:30.500Z",
      endedAt: "2023-11-14T22:14:30.000Z",
      exitCode: 0,
    });

    // A final record is served from Valkey without asking ECS again.
    const again = await launcher.request("GET", `/builds/${buildId}`);
    expect(again.json).toEqual(ended.json);
    expect(standIn.calls("DescribeTasks")).toHaveLength(2);
  });

  it("records a non-zero exit of the builder container as failed", async () => {
    standIn.on("RunTask", startedTask("PROVISIONING"));
    const posted = await launcher.request("POST", "/projects/site/builds", {
      gitUrl: request.gitUrl,
    });

    standIn.on(
      "DescribeTasks",
      describedTask("STOPPED", {
        stoppedAt: 1_700_000_070,
        containers: [{ name: "builder", exitCode: 3 }],
      }),
    );
    const ended = await launcher.request(
      "GET",
      `/builds/${posted.json.buildId}`,
    );

    expect(ended.json.status).toBe("failed");
    expect(ended.json.exitCode).toBe(3);
  });

  it("answers 502 LAUNCHER_ERR_ECS_FAILURE when RunTask reports failures", async () => {
    const failuresBefore = await launcher.metric(
      "launcher_run_task_failures_total",
      { reason: "RESOURCE:MEMORY" },
    );
    const failedBefore = await launcher.metric(
      "launcher_builds_started_total",
      { runner: "ecs", outcome: "failed" },
    );
    standIn.on("RunTask", () => ({
      status: 200,
      body: {
        tasks: [],
        failures: [
          { arn: "arn:aws:ecs:::cluster/builds", reason: "RESOURCE:MEMORY" },
        ],
      },
    }));

    const answer = await launcher.request("POST", "/projects/site/builds", {
      gitUrl: request.gitUrl,
    });

    expect(answer.status).toBe(502);
    expect(answer.json.error).toEqual({
      code: "LAUNCHER_ERR_ECS_FAILURE",
      message: expect.any(String),
      reason: "RESOURCE:MEMORY",
      buildId: expect.any(String),
    });
    expect(standIn.calls("RunTask")).toHaveLength(1);

    const record = await launcher.request(
      "GET",
      `/builds/${answer.json.error.buildId}`,
    );
    expect(record.json.status).toBe("failed");
    expect(record.json.exitCode).toBeNull();
    expect(record.json.startedAt).toBeNull();
    expect(Date.parse(record.json.endedAt)).toBeGreaterThanOrEqual(
      Date.parse(record.json.createdAt),
    );

    expect(
      await launcher.metric("launcher_run_task_failures_total", {
        reason: "RESOURCE:MEMORY",
      }),
    ).toBe(failuresBefore + 1);
    expect(
      await launcher.metric("launcher_builds_started_total", {
        runner: "ecs",
        outcome: "failed",
      }),
    ).toBe(failedBefore + 1);
  });

  it("answers 502 after ECS_MAX_ATTEMPTS tries when the endpoint fails with 500", async () => {
    const before = await launcher.metric("launcher_run_task_failures_total", {
      reason: "api_server",
    });
    standIn.on("RunTask", () => ({
      status: 500,
      body: { __type: "ServerException", message: "internal failure" },
    }));

    const answer = await launcher.request("POST", "/projects/site/builds", {
      gitUrl: request.gitUrl,
    });

    expect(answer.status).toBe(502);
    expect(answer.json.error.code).toBe("LAUNCHER_ERR_ECS_FAILURE");
    expect(answer.json.error.reason).toBe(
      "ServerException (HTTP 500): internal failure",
    );

    // Two tries, both with the build id as idempotency token, then no more.
    const tokens = standIn.calls("RunTask").map((c) => c.body.clientToken);
    expect(tokens).toEqual([
      answer.json.error.buildId,
      answer.json.error.buildId,
    ]);

    const record = await launcher.request(
      "GET",
      `/builds/${answer.json.error.buildId}`,
    );
    expect(record.json.status).toBe("failed");
    expect(
      await launcher.metric("launcher_run_task_failures_total", {
        reason: "api_server",
      }),
    ).toBe(before + 1);
  });

  it("does not retry a client error and labels it api_client", async () => {
    const before = await launcher.metric("launcher_run_task_failures_total", {
      reason: "api_client",
    });
    standIn.on("RunTask", () => ({
      status: 400,
      body: {
        __type: "InvalidParameterException",
        message: "x".repeat(1000),
      },
    }));

    const answer = await launcher.request("POST", "/projects/site/builds", {
      gitUrl: request.gitUrl,
    });

    expect(answer.status).toBe(502);
    expect(answer.json.error.reason).toMatch(/^InvalidParameterException/);
    expect(answer.json.error.reason.length).toBeLessThanOrEqual(256);
    expect(standIn.calls("RunTask")).toHaveLength(1);
    expect(
      await launcher.metric("launcher_run_task_failures_total", {
        reason: "api_client",
      }),
    ).toBe(before + 1);
  });

  it("times every RunTask call in the duration histogram", async () => {
    const before = await launcher.metric(
      "launcher_run_task_duration_seconds_count",
    );
    standIn.on("RunTask", startedTask("PROVISIONING"));

    await launcher.request("POST", "/projects/site/builds", {
      gitUrl: request.gitUrl,
    });

    expect(
      await launcher.metric("launcher_run_task_duration_seconds_count"),
    ).toBe(before + 1);
  });
});

describe("ECS runner polling", () => {
  it("ends a build it started on its own interval, without a GET", async () => {
    const polling = await TestLauncher.start(
      valkey,
      {
        ...ECS_ENV,
        AWS_ENDPOINT_URL_ECS: standIn.url,
        ECS_POLL_INTERVAL_MS: "100",
      },
      { ecsCredentials: CREDENTIALS },
    );
    onTestFinished(() => polling.close());

    standIn.on("RunTask", startedTask("PROVISIONING"));
    standIn.on(
      "DescribeTasks",
      describedTask("STOPPED", {
        stoppedAt: 1_700_000_070,
        containers: [{ name: "builder", exitCode: 0 }],
      }),
    );
    const posted = await polling.request("POST", "/projects/site/builds", {
      gitUrl: request.gitUrl,
    });
    const { buildId } = posted.json;

    const ended = await polling.logs.waitFor(
      (r) => r.msg === "build ended" && r.buildId === buildId,
    );
    expect(ended.status).toBe("succeeded");

    // The record says so to any launcher, here the other one.
    const record = await launcher.request("GET", `/builds/${buildId}`);
    expect(record.json.status).toBe("succeeded");
    expect(record.json.exitCode).toBe(0);
    expect(polling.launcher.service.runner.counts()).toEqual({
      queued: 0,
      running: 0,
    });
  });
});
