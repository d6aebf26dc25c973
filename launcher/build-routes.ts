/**
 * `POST /projects/:slug/builds` starts a build; `GET /builds/:buildId`
 * answers for one, started by this launcher or another.
 */
import type { FastifyInstance } from "fastify";
import { isBuildId } from "../shared/wire.ts";
import { parseBuildRequest, parseSlug } from "./build-request.ts";
import type { BuildService } from "./build-service.ts";
import { BuildNotFoundError } from "./errors.ts";

export function registerBuildRoutes(
  app: FastifyInstance,
  service: BuildService,
): void {
  app.post<{ Params: { slug: string } }>(
    "/projects/:slug/builds",
    async (request, reply) => {
      const slug = parseSlug(request.params.slug);
      const body = parseBuildRequest(request.body);

      const accepted = await service.start(slug, body);
      return reply.status(202).send(accepted);
    },
  );

  app.get<{ Params: { buildId: string } }>(
    "/builds/:buildId",
    async (request) => {
      // An id of the wrong form cannot name any build.
      const { buildId } = request.params;
      if (!isBuildId(buildId)) throw new BuildNotFoundError();

      return service.get(buildId);
    },
  );
}
