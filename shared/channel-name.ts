/**
 * Slugs and channel names, defined once for every service.
 *
 * A slug names a project and becomes a subdomain, so it is a DNS label:
 * 1-63 characters of lowercase letters, digits and hyphens, neither starting
 * nor ending with a hyphen. The live log of a slug is published on the
 * Valkey channel `logs:<slug>`, and viewers join the Socket.IO room of the
 * same name.
 */

declare const slugBrand: unique symbol;
declare const channelBrand: unique symbol;

export type Slug = string & { readonly [slugBrand]: true };
export type ChannelName = `logs:${string}` & { readonly [channelBrand]: true };

export const CHANNEL_PREFIX = "logs:";
export const SLUG_MAX_LENGTH = 63;

const SLUG_PATTERN = /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/;

export function isSlug(value: unknown): value is Slug {
  return typeof value === "string" && SLUG_PATTERN.test(value);
}

export function toSlug(value: string): Slug | undefined {
  return isSlug(value) ? value : undefined;
}

/** The Valkey channel and Socket.IO room of a slug: `logs:<slug>`. */
export function channelName(slug: Slug): ChannelName {
  return `${CHANNEL_PREFIX}${slug}` as ChannelName;
}

/**
 * Reads a channel name sent by a client. Returns the slug, or undefined when
 * the value is not a string of the form `logs:<slug>`.
 */
export function parseChannelName(value: unknown): Slug | undefined {
  if (typeof value !== "string") return undefined;

  // A valid name is never longer than this; checking first keeps a huge
  // string from reaching the pattern.
  if (value.length > CHANNEL_PREFIX.length + SLUG_MAX_LENGTH) return undefined;
  if (!value.startsWith(CHANNEL_PREFIX)) return undefined;

  return toSlug(value.slice(CHANNEL_PREFIX.length));
}
