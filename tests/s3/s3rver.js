// Starts @20minutes/s3rver from the test's local node_modules (the package ships its CLI module
// but no bin script). Usage: node s3rver.js NODE_MODULES_DIR -d DIR -a 127.0.0.1 -p PORT ...
'use strict';
const path = require('path');
const modules = process.argv[2];
let program;
try {
  program = require(path.join(modules, '@20minutes', 's3rver', 'lib', 'cli.js'));
} catch (err) {
  console.error(`s3rver is not installed in ${modules}: run tests/deps/s3.sh (${err.message})`);
  process.exit(1);
}
program.parseAsync([process.argv[0], 's3rver', ...process.argv.slice(3)]).catch((err) => {
  console.error(err);
  process.exit(1);
});
