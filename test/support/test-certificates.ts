/**
 * A throwaway certificate authority and a server certificate for
 * 127.0.0.1, made with the openssl command line, for TLS tests.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { onTestFinished } from "vitest";

const run = promisify(execFile);

export interface TestCertificates {
  caFile: string;
  certFile: string;
  keyFile: string;
}

export async function makeCertificates(): Promise<TestCertificates> {
  const dir = await mkdtemp(join(tmpdir(), "codebay-tls-"));
  onTestFinished(() => rm(dir, { recursive: true, force: true }));
  const at = (name: string) => join(dir, name);

  await run("openssl", [
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "1",
    "-subj",
    "/CN=codebay test ca",
    "-keyout",
    at("ca.key"),
    "-out",
    at("ca.pem"),
  ]);
  await run("openssl", [
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=127.0.0.1",
    "-keyout",
    at("server.key"),
    "-out",
    at("server.csr"),
  ]);
  await writeFile(at("san.ext"), "subjectAltName=IP:127.0.0.1,DNS:localhost\n");
  await run("openssl", [
    "x509",
    "-req",
    "-in",
    at("server.csr"),
    "-days",
    "1",
    "-CA",
    at("ca.pem"),
    "-CAkey",
    at("ca.key"),
    "-CAcreateserial",
    "-extfile",
    at("san.ext"),
    "-out",
    at("server.pem"),
  ]);

  return {
    caFile: at("ca.pem"),
    certFile: at("server.pem"),
    keyFile: at("server.key"),
  };
}
