/**
 * A feed follows one build of a slug at a time. Lines of an earlier build
 * that arrive after a newer build started are not delivered live; they
 * are counted and stay in history, where asking for that build finds them.
 */
import { expect, it, onTestFinished } from "vitest";
import { recordFollower, seqRange } from "./support/follower.ts";
import { startRelay } from "./support/relay-process.ts";
import { sampleValue, scrapeMetrics } from "./support/prometheus-text.ts";
import { syntheticBuild } from "./support/synthetic-build.ts";
import { connectStringViewer } from "./support/viewer.ts";
import { waitFor } from "./support/wait-for.ts";
import { useValkey } from "./support/valkey-fixture.ts";

const store = useValkey();

it("counts an earlier build's lines that come after a newer build started, and keeps them in history", async () => {
  const relay = await startRelay(store.url);
  const slug = "overlap";
  const viewer = connectStringViewer(relay.url);
  viewer.socket.emit("subscribe", `logs:${slug}`);
  await viewer.waitForMessages(1);

  const first = syntheticBuild(store.url, slug, "overlap-1");
  const second = syntheticBuild(store.url, slug, "overlap-2");
  onTestFinished(() => {
    first.close();
    second.close();
  });
  first.lines(5);
  await first.flush();
  await viewer.waitForMessages(1 + 5);
  second.lines(3);
  await second.flush();
  await viewer.waitForMessages(1 + 5 + 3);
  first.lines(2);
  await first.finish(3);

  const metrics = await waitFor(
    () => scrapeMetrics(relay.url),
    (families) => sampleValue(families, "relay_superseded_lines_total") === 3,
    { what: "the first build's 2 lines and status counted" },
  );
  expect(sampleValue(metrics, "relay_superseded_lines_total")).toBe(3);
  expect(viewer.messages.slice(1).map((m) => JSON.parse(m).buildId)).toEqual([
    ...Array(5).fill("overlap-1"),
    ...Array(3).fill("overlap-2"),
  ]);

  // History has all of the first build: asking for it gets every line.
  const replay = recordFollower({
    url: relay.url,
    slug,
    buildId: "overlap-1",
  });
  await replay.finished;
  expect(replay.seen.slice(0, 8)).toEqual(seqRange("overlap-1", 8));
  // Past the end of a finished build a follower moves on to the next one:
  // whatever it holds beyond the first build is the second one, in order.
  expect(replay.seen.slice(8)).toEqual(
    seqRange("overlap-2", 3).slice(0, replay.seen.length - 8),
  );
});
