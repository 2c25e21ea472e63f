// Parses and validates an AsyncAPI document with @asyncapi/parser (run by bench/asyncapi.sh).
// Fails on any diagnostic of error severity, prints the warnings, and checks the document's
// shape: one message per event name, every channel carrying all of them, a send operation per
// channel.
const fs = require('fs');
const { Parser, DiagnosticSeverity } = require('@asyncapi/parser');

async function main() {
  const path = process.argv[2];
  const text = fs.readFileSync(path, 'utf8');
  const { document, diagnostics } = await new Parser().parse(text);
  const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
  for (const d of diagnostics) {
    if (d.severity !== DiagnosticSeverity.Error) {
      console.log(`note: ${d.code}: ${d.message} at ${d.path.join('/')}`);
    }
  }
  if (errors.length > 0 || !document) {
    for (const d of errors) console.error(`error: ${d.code}: ${d.message} at ${d.path.join('/')}`);
    throw new Error(`${path}: ${errors.length} error(s)`);
  }
  const names = document.components().messages().all().map((m) => m.name());
  const expected = JSON.parse(text).components.messages;
  if (names.length !== Object.keys(expected).length || new Set(names).size !== names.length) {
    throw new Error(`messages: ${names.join(', ')}`);
  }
  const channels = document.channels().all();
  for (const c of channels) {
    const carried = c.messages().all().length;
    if (carried !== names.length) {
      throw new Error(`channel ${c.id()} carries ${carried} of ${names.length} messages`);
    }
  }
  const operations = document.operations().all();
  if (operations.length !== channels.length || operations.some((o) => !o.isSend())) {
    throw new Error('one send operation per channel expected');
  }
  console.log(
    `${path}: valid AsyncAPI ${document.version()}: ${names.length} messages ` +
      `(${names.join(', ')}), ${channels.length} channels, ${operations.length} operations`,
  );
}

main().catch((e) => {
  console.error(e.message || e);
  process.exit(1);
});
