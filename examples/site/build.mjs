// Builds the site: renders content/*.md to dist/*.html with a small
// markdown subset (front matter, headings, paragraphs, lists, bold, code,
// links). Needs nothing but Node. Prints what a real site generator prints:
// coloured progress to stdout, warnings to stderr, and a progress bar that
// rewrites its line with "\r".
import { Buffer } from "node:buffer";
import { mkdir, readdir, readFile, rm, writeFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { performance } from "node:perf_hooks";
import { setTimeout as delay } from "node:timers/promises";

const SOURCE = "content";
const OUTPUT = "dist";
const SITE_URL = "https://lakeside.codebay.example";

const colour = (code) => (text) => `\u001b[${code}m${text}\u001b[0m`;
const bold = colour("1");
const green = colour("32");
const yellow = colour("33");
const cyan = colour("36");
const dim = colour("2");

let warnings = 0;
function warn(message) {
  warnings += 1;
  process.stderr.write(`${yellow("warning")} ${message}\n`);
}

function escapeHtml(text) {
  return text
    .replaceAll("&", "&amp;")
    .replaceAll("<", "&lt;")
    .replaceAll(">", "&gt;");
}

function inline(text) {
  return escapeHtml(text)
    .replace(/\*\*(.+?)\*\*/g, "<strong>$1</strong>")
    .replace(/`(.+?)`/g, "<code>$1</code>")
    .replace(/\[(.+?)\]\((.+?)\)/g, '<a href="$2">$1</a>');
}

function parse(source) {
  const meta = {};
  let body = source;
  const match = /^---\n([\s\S]*?)\n---\n/.exec(source);
  if (match) {
    for (const line of match[1].split("\n")) {
      const at = line.indexOf(":");
      if (at > 0) meta[line.slice(0, at).trim()] = line.slice(at + 1).trim();
    }
    body = source.slice(match[0].length);
  }
  return { meta, body };
}

function render(body) {
  const html = [];
  let list = false;
  let paragraph = [];

  const endParagraph = () => {
    if (paragraph.length > 0)
      html.push(`<p>${inline(paragraph.join(" "))}</p>`);
    paragraph = [];
  };
  const endList = () => {
    if (list) html.push("</ul>");
    list = false;
  };

  for (const line of body.split("\n")) {
    const heading = /^(#{1,3}) (.*)$/.exec(line);
    if (heading) {
      endParagraph();
      endList();
      const level = heading[1].length;
      html.push(`<h${level}>${inline(heading[2])}</h${level}>`);
    } else if (line.startsWith("- ")) {
      endParagraph();
      if (!list) html.push("<ul>");
      list = true;
      html.push(`<li>${inline(line.slice(2))}</li>`);
    } else if (line.trim() === "") {
      endParagraph();
      endList();
    } else {
      endList();
      paragraph.push(line.trim());
    }
  }
  endParagraph();
  endList();
  return html.join("\n");
}

function page(meta, content, nav) {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>${escapeHtml(meta.title ?? "Untitled")}</title>
<meta name="description" content="${escapeHtml(meta.description ?? "")}">
<link rel="stylesheet" href="style.css">
</head>
<body>
<nav>${nav}</nav>
<main>
${content}
</main>
</body>
</html>
`;
}

const STYLE = `body { font: 17px/1.5 Georgia, serif; margin: 0 auto; max-width: 40em; padding: 1em; }
nav a { margin-right: 1em; }
code { background: #f3efe6; padding: 0 0.2em; }
`;

function progressBar(done, total) {
  const width = 24;
  const filled = Math.round((done / total) * width);
  return `[${"#".repeat(filled)}${" ".repeat(width - filled)}] ${done}/${total}`;
}

async function main() {
  const started = performance.now();
  console.log(bold(cyan("lakeside-site")) + dim(" static build"));
  console.log(`${dim("source")} ${SOURCE}/   ${dim("output")} ${OUTPUT}/`);

  await rm(OUTPUT, { recursive: true, force: true });
  await mkdir(OUTPUT, { recursive: true });
  console.log(`${green("✓")} cleaned ${OUTPUT}/`);

  const files = (await readdir(SOURCE)).filter((f) => f.endsWith(".md")).sort();
  console.log(`${green("✓")} found ${files.length} pages`);

  const pages = [];
  for (const file of files) {
    const { meta, body } = parse(await readFile(join(SOURCE, file), "utf8"));
    const slug = basename(file, ".md");
    if (!meta.title) warn(`${file}: no title in front matter, using "${slug}"`);
    if (!meta.description) warn(`${file}: no description in front matter`);
    pages.push({ file, slug, meta: { title: slug, ...meta }, body });
    console.log(`  ${dim("read")} ${file} ${dim(`(${body.length} bytes)`)}`);
  }

  const known = new Set(pages.map((p) => `${p.slug}.html`));
  for (const p of pages) {
    for (const [, target] of p.body.matchAll(/\]\((.+?)\)/g)) {
      if (!known.has(target)) warn(`${p.file}: link to ${target} has no page`);
    }
  }

  const nav = pages
    .map((p) => `<a href="${p.slug}.html">${escapeHtml(p.meta.title)}</a>`)
    .join("");

  let bytes = 0;
  for (const [index, p] of pages.entries()) {
    process.stdout.write(
      `\r${dim("rendering")} ${progressBar(index, pages.length)}`,
    );
    const html = page(p.meta, render(p.body), nav);
    await writeFile(join(OUTPUT, `${p.slug}.html`), html);
    bytes += Buffer.byteLength(html);
    await delay(40);
  }
  process.stdout.write(
    `\r${dim("rendering")} ${progressBar(pages.length, pages.length)}\n`,
  );

  for (const p of pages) console.log(`${green("✓")} wrote ${p.slug}.html`);

  await writeFile(join(OUTPUT, "style.css"), STYLE);
  console.log(`${green("✓")} wrote style.css`);

  const urls = pages.map(
    (p) => `  <url><loc>${SITE_URL}/${p.slug}.html</loc></url>`,
  );
  const sitemap = `<?xml version="1.0" encoding="UTF-8"?>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">
${urls.join("\n")}
</urlset>
`;
  await writeFile(join(OUTPUT, "sitemap.xml"), sitemap);
  console.log(
    `${green("✓")} wrote sitemap.xml ${dim(`(${urls.length} urls)`)}`,
  );

  await writeFile(
    join(OUTPUT, "robots.txt"),
    `Sitemap: ${SITE_URL}/sitemap.xml\n`,
  );
  console.log(`${green("✓")} wrote robots.txt`);

  console.log("");
  console.log(bold("  page               size"));
  for (const p of pages) {
    const size = Buffer.byteLength(page(p.meta, render(p.body), nav));
    console.log(
      `  ${`${p.slug}.html`.padEnd(18)} ${String(size).padStart(5)} B`,
    );
  }
  console.log("");

  const ms = Math.round(performance.now() - started);
  const summary = `${pages.length} pages, ${bytes} bytes in ${ms} ms`;
  console.log(`${green(bold("done"))} ${summary}, ${warnings} warnings`);
}

await main();
