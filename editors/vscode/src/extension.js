// CFL language client: starts `cflc lsp` over stdio (no build step; plain CommonJS).
'use strict';

const vscode = require('vscode');
const { LanguageClient, TransportKind } = require('vscode-languageclient/node');

/** @type {LanguageClient | undefined} */
let client;

/** The command line of the server from the `cfglang.server.*` settings. */
function serverCommand() {
  const config = vscode.workspace.getConfiguration('cfglang');
  const folders = vscode.workspace.workspaceFolders || [];
  const root = folders.length > 0 ? folders[0].uri.fsPath : '';
  const expand = (s) => String(s).split('${workspaceFolder}').join(root);
  const command = expand(config.get('server.path') || 'cflc');
  const extra = config.get('server.args') || [];
  return { command, args: ['lsp', ...extra.map(expand)] };
}

function createClient() {
  const { command, args } = serverCommand();
  const run = { command, args, transport: TransportKind.stdio };
  const serverOptions = { run, debug: run };
  const clientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'cfl' },
      { scheme: 'untitled', language: 'cfl' },
    ],
    synchronize: {
      // cfl.toml changes the project root and allowed paths; .cfl files outside the
      // editor (git checkout, generators) change what open files import or extend.
      fileEvents: vscode.workspace.createFileSystemWatcher('**/{*.cfl,cfl.toml}'),
    },
    outputChannelName: 'CFL Language Server',
  };
  return new LanguageClient('cfglang', 'CFL Language Server', serverOptions, clientOptions);
}

async function start() {
  client = createClient();
  try {
    await client.start();
  } catch (err) {
    const { command } = serverCommand();
    const message = err && err.message ? err.message : String(err);
    vscode.window.showErrorMessage(
      `CFL: could not start the language server \`${command} lsp\` (${message}). ` +
        'Install cfglang (`pip install cfglang`) or set "cfglang.server.path".',
    );
  }
}

async function stop() {
  if (!client) {
    return;
  }
  const old = client;
  client = undefined;
  try {
    await old.stop();
  } catch (_err) {
    // The server may already be gone (crashed or never started).
  }
}

async function restart() {
  await stop();
  await start();
}

/** @param {vscode.ExtensionContext} context */
async function activate(context) {
  context.subscriptions.push(
    vscode.commands.registerCommand('cfglang.restartServer', restart),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration('cfglang.server')) {
        restart();
      }
    }),
  );
  await start();
}

function deactivate() {
  return stop();
}

module.exports = { activate, deactivate, serverCommand };
