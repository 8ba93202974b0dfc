// `make lint`: validate asyncapi.yaml (and the openapi.yaml schemas it references) with the AsyncAPI parser.
// Prints every diagnostic; exits 1 when any is an error (severity 0), so a warning never fails the lint.
import { Parser, fromFile } from "@asyncapi/parser";

const path = process.argv[2] ?? "asyncapi.yaml";
const { document, diagnostics } = await fromFile(new Parser(), path).parse();
const names = ["error", "warning", "info", "hint"];
for (const d of diagnostics) {
  console.log(`${path}: ${names[d.severity] ?? d.severity}: ${d.message} (${d.code}) at ${d.path.join(".") || "/"}`);
}
const errors = diagnostics.filter((d) => d.severity === 0);
if (errors.length > 0 || document === undefined) {
  console.error(`${path}: ${errors.length} error(s)`);
  process.exit(1);
}
console.log(`${path}: valid AsyncAPI ${document.version()}, ${document.allMessages().length} messages`);
