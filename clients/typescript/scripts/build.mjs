// Builds the package: the generated client of this repository
// (api/gen/es, made by `make generate`) is copied into gen/, then tsc
// compiles src/ into dist/. Nothing generated is committed twice.
import { cpSync, rmSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
rmSync(join(root, "gen"), { recursive: true, force: true });
rmSync(join(root, "dist"), { recursive: true, force: true });
cpSync(join(root, "..", "..", "api", "gen", "es"), join(root, "gen"), { recursive: true });
execFileSync(process.execPath, [join(root, "node_modules", "typescript", "bin", "tsc"), "-p", root], { stdio: "inherit" });
