/**
 * The launcher's Fastify app: its routes, and one error handler that turns
 * every failure into `{ error: { code, message } }` with a stable code.
 */
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
} from "fastify";
import type { Logger } from "../shared/logger.ts";
import { registerBuildRoutes } from "./build-routes.ts";
import type { BuildService } from "./build-service.ts";
import { InternalError, LauncherError, RequestError } from "./errors.ts";
import { registerHealthRoutes } from "./health-routes.ts";
import type { LauncherMetrics } from "./launcher-metrics.ts";

export interface HttpAppOptions {
  service: BuildService;
  metrics: LauncherMetrics;
  logger: Logger;
  httpBodyLimitBytes: number;
}

export function createHttpApp(options: HttpAppOptions): FastifyInstance {
  const app = Fastify({
    loggerInstance: options.logger as FastifyBaseLogger,
    // Health checks and scrapes would drown the log; the handlers log what
    // matters themselves.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: options.httpBodyLimitBytes,
    // Errors Fastify meets before routing (a URL it cannot decode, a path
    // segment over its length limit) skip the error handler.
    frameworkErrors: (err, _request, reply) => {
      const error = new RequestError(
        "LAUNCHER_ERR_BAD_REQUEST",
        err.code === "FST_ERR_MAX_PARAM_LENGTH"
          ? "a path segment is too long"
          : "the URL is not valid",
      );
      void (reply as FastifyReply)
        .status(error.statusCode)
        .send(error.toBody());
    },
  });

  // The API speaks JSON only; any other body is refused as such.
  app.removeContentTypeParser("text/plain");

  app.setErrorHandler((err, request, reply) => {
    const error = toLauncherError(err);
    const fields = { code: error.code, method: request.method };

    // Only a fault of the launcher's own is an error; a refusing ECS, an
    // absent Valkey or a shutdown is degradation, a bad request the
    // client's mistake.
    if (error instanceof InternalError) {
      request.log.error({ ...fields, err }, "request failed");
    } else if (error.statusCode >= 500) {
      request.log.warn({ ...fields, err }, "request failed");
    } else {
      request.log.info({ ...fields, url: request.url }, "request rejected");
    }
    return reply.status(error.statusCode).send(error.toBody());
  });

  app.setNotFoundHandler((request, reply) => {
    const error = new RequestError("LAUNCHER_ERR_NOT_FOUND", "no such route");
    return reply.status(error.statusCode).send(error.toBody());
  });

  registerBuildRoutes(app, options.service);
  registerHealthRoutes(app, options.service, options.metrics);
  return app;
}

/** Fastify's own errors, by their code, as the launcher's. */
const FASTIFY_ERRORS: Record<string, () => RequestError> = {
  // Fastify's parser also refuses prototype keys, and says no more.
  FST_ERR_CTP_INVALID_JSON_BODY: () =>
    new RequestError(
      "LAUNCHER_ERR_BAD_JSON",
      "the body is not valid JSON, or holds a __proto__ or constructor.prototype key",
    ),
  FST_ERR_CTP_EMPTY_JSON_BODY: () =>
    new RequestError("LAUNCHER_ERR_BAD_JSON", "the JSON body is empty"),
  FST_ERR_CTP_BODY_TOO_LARGE: () =>
    new RequestError("LAUNCHER_ERR_BODY_TOO_LARGE", "the body is too large"),
  FST_ERR_CTP_INVALID_MEDIA_TYPE: () =>
    new RequestError(
      "LAUNCHER_ERR_UNSUPPORTED_MEDIA_TYPE",
      "the body must be application/json",
    ),
};

function toLauncherError(err: unknown): LauncherError {
  if (err instanceof LauncherError) return err;

  const fastifyError = err as Partial<FastifyError> | null;
  const code = fastifyError?.code;
  const known = code === undefined ? undefined : FASTIFY_ERRORS[code];
  if (known) return known();

  // Any other client mistake Fastify caught (a bad Content-Length, say).
  const status = fastifyError?.statusCode;
  if (status !== undefined && status >= 400 && status < 500) {
    const message = fastifyError?.message ?? "bad request";
    return new RequestError("LAUNCHER_ERR_BAD_REQUEST", message);
  }
  return new InternalError({ cause: err });
}
