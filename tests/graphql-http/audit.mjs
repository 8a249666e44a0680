// Runs the `graphql-http` package's server audits (GraphQL over HTTP
// conformance) against a running smsauth and fails on any audit that is not
// ok. `.ci/run` installs the pinned package in a scratch folder, copies this
// file there and runs it:  node audit.mjs http://127.0.0.1:PORT/graphql
import { serverAudits } from 'graphql-http';

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs URL');
  process.exit(2);
}

const results = [];
for (const audit of serverAudits({ url })) {
  results.push(await audit.fn());
}

let notOk = 0;
for (const result of results) {
  if (result.status === 'ok') {
    console.log(`ok    ${result.id} ${result.name}`);
  } else {
    notOk += 1;
    console.log(`${result.status.padEnd(5)} ${result.id} ${result.name}`);
    console.log(`      ${result.reason}`);
    if (result.response) {
      const body = await result.response.text().catch(() => '');
      console.log(`      ${result.response.status} ${body.slice(0, 300)}`);
    }
  }
}
const ok = results.length - notOk;
console.log(`audits: ${ok} passed, ${notOk} failed`);
process.exit(notOk === 0 ? 0 : 1);
