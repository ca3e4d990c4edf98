// The API reference page: Swagger UI's own files (self-hosted, no CDN) and a page that shows openapi.json, which the
// deployment (or the local stack) writes next to it: the merged OpenAPI of the three APIs.
import { copyFileSync, mkdirSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);
const source = dirname(require.resolve("swagger-ui-dist/package.json"));
const out = join("dist", "api");
mkdirSync(out, { recursive: true });
for (const file of ["swagger-ui.css", "swagger-ui-bundle.js", "LICENSE"]) copyFileSync(join(source, file), join(out, file));
writeFileSync(
  join(out, "index.html"),
  `<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8" />
    <meta name="viewport" content="width=device-width, initial-scale=1" />
    <title>Avatar API reference</title>
    <link rel="icon" href="data:," />
    <link rel="stylesheet" href="swagger-ui.css" />
  </head>
  <body>
    <main id="reference" aria-label="Avatar API reference"></main>
    <script src="swagger-ui-bundle.js"></script>
    <script src="start.js"></script>
  </body>
</html>
`,
);
writeFileSync(join(out, "start.js"), `SwaggerUIBundle({ url: "openapi.json", dom_id: "#reference", deepLinking: true });\n`);
