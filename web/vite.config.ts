import { defineConfig } from "vite";

// The app is static files: served by CloudFront from a private bucket on AWS, by the local stack at its root here.
export default defineConfig({
  base: "./",
  build: { outDir: "dist", emptyOutDir: true, target: "es2022", assetsInlineLimit: 0, reportCompressedSize: true },
  test: { environment: "node", include: ["tests/**/*.test.ts"] },
});
