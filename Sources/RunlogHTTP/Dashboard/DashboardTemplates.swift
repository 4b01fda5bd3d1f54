/// The dashboard's Mustache templates and its style sheet, compiled into the binary (no files to
/// install beside it). `{{x}}` escapes; `{{{x}}}` is used only for HTML the pages escaped themselves.
enum DashboardTemplates {
    static let all: [String: String] = [
        "layout": layout, "signin": signIn, "error": error, "workflows": workflows, "workflow": workflow,
        "log": log, "verify": verify, "keys": keys,
    ]

    static let layout = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · Runlog</title>
        <link rel="stylesheet" href="/ui/assets/dashboard.css">
        </head>
        <body>
        <header class="top">
          <a class="brand" href="/ui/">Runlog</a>
          <nav>
            <a href="/ui/">Workflows</a>
            <a href="/ui/log">Log</a>
            {{#is_admin}}<a href="/ui/keys">Keys</a>{{/is_admin}}
          </nav>
          <div class="who">
            <span id="signed-in">{{key_name}} <span class="role">{{role}}</span></span>
            <form method="post" action="/ui/signout">
              <input type="hidden" name="csrf" value="{{csrf}}">
              <button type="submit" id="sign-out">Sign out</button>
            </form>
          </div>
        </header>
        <main>
        <h1>{{title}}</h1>
        {{{content}}}
        </main>
        </body>
        </html>
        """

    static let signIn = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>Sign in · Runlog</title>
        <link rel="stylesheet" href="/ui/assets/dashboard.css">
        </head>
        <body class="signin">
        <main>
        <h1>Runlog</h1>
        <form method="post" action="/ui/signin" class="card">
          <label for="key">API key</label>
          <input type="password" id="key" name="key" autocomplete="off" placeholder="rlk_…" required>
          {{#message}}<p class="error" id="message">{{message}}</p>{{/message}}
          <button type="submit" id="sign-in">Sign in</button>
          <p class="hint">Sign in with an API key (<code>runlog keys create</code>). The key's role applies:
          an auditor reads, a service key also sends commands, an admin also manages keys.</p>
        </form>
        </main>
        </body>
        </html>
        """

    static let error = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{status}} {{reason}} · Runlog</title>
        <link rel="stylesheet" href="/ui/assets/dashboard.css">
        </head>
        <body>
        <main>
        <h1>{{status}} {{reason}}</h1>
        <p class="error" id="error-message">{{message}}</p>
        {{#field}}<p>Field: <code>{{field}}</code></p>{{/field}}
        <p><code>{{code}}</code> · <a href="/ui/">Workflows</a></p>
        </main>
        </body>
        </html>
        """

    static let workflows = """
        {{#empty}}<p class="empty">No workflows yet.</p>{{/empty}}
        {{^empty}}
        <div class="scroll">
        <table id="workflows">
          <thead><tr><th>#</th><th>Name</th><th>Status</th><th>Active</th><th>Latest</th><th>Rollout</th></tr></thead>
          <tbody>
          {{#workflows}}
            <tr><td>{{number}}</td><td><a href="/ui/workflows/{{id}}">{{name}}</a></td>
            <td><span class="status {{status}}">{{status}}</span></td><td>{{active}}</td><td>{{latest}}</td><td>{{rollout}}</td></tr>
          {{/workflows}}
          </tbody>
        </table>
        </div>
        {{/empty}}
        """

    static let workflow = """
        <p class="meta"><code>{{id}}</code> · created {{created}}{{#created_by}} by <code>{{created_by}}</code>{{/created_by}}</p>
        {{#rollout}}
        <section class="card" id="rollout">
          <h2>Rollout</h2>
          <p>Treatment v{{treatment}} at {{percentage}}%, control v{{control}} ({{status}}):
          {{treatment_runs}} treatment runs, {{control_runs}} control runs.</p>
        </section>
        {{/rollout}}
        <div class="columns">
          <section class="card definition" id="active">
            <h2>Active{{#active}} (v{{version}}){{/active}}</h2>
            {{#active}}{{{definition}}}{{/active}}
            {{^active}}<p class="empty">No active version.</p>{{/active}}
          </section>
          <section class="card definition" id="draft">
            <h2>Draft{{#draft}} (draft {{version}}, saved {{saved_at}}){{/draft}}</h2>
            {{#draft}}{{{definition}}}{{/draft}}
            {{^draft}}<p class="empty">No draft.</p>{{/draft}}
          </section>
        </div>
        <section class="card" id="versions">
          <h2>Version history</h2>
          {{^versions}}<p class="empty">Nothing published yet.</p>{{/versions}}
          <ol class="versions">
          {{#versions}}
            <li><strong>v{{version}}</strong> <span class="status {{status}}">{{status}}</span>
            <span class="meta">{{published_at}}{{#published_by}} · <code>{{published_by}}</code>{{/published_by}}
            {{#reverted_from}} · {{reverted_from}}{{/reverted_from}}</span>
            <p>{{description}}</p></li>
          {{/versions}}
          </ol>
        </section>
        """

    static let log = """
        <p class="meta">Head: position <strong id="head-position">{{head_position}}</strong>,
        hash <code id="head-hash">{{head_hash}}</code> · <a href="/ui/log/verify" id="verify">Verify the chain</a></p>
        <div class="scroll">
        <table id="events">
          <thead><tr><th>Position</th><th>Recorded</th><th>Stream</th><th>Type</th><th>Actor</th></tr></thead>
          <tbody>
          {{#events}}
            <tr><td>{{position}}</td><td>{{time}}</td><td><code>{{stream}}</code></td><td>{{type}}</td><td><code>{{actor}}</code></td></tr>
          {{/events}}
          </tbody>
        </table>
        </div>
        <p class="pages">{{#newest}}<a href="{{newest}}">Newest</a>{{/newest}} {{#older}}<a href="{{older}}" id="older">Older</a>{{/older}}</p>
        """

    static let verify = """
        {{#intact}}<p class="ok" id="verify-result">The chain is intact: {{count}} events, head hash <code>{{head_hash}}</code>.</p>{{/intact}}
        {{#broken}}<p class="error" id="verify-result">The chain is broken at position {{position}}: {{reason}}</p>{{/broken}}
        <p><a href="/ui/log">Back to the log</a></p>
        """

    static let keys = """
        {{#created}}
        <section class="card ok" id="created-key">
          <h2>New {{role}} key <code>{{id}}</code></h2>
          <p>Copy it now: it is not shown again.</p>
          <p><code id="new-key">{{text}}</code></p>
        </section>
        {{/created}}
        <section class="card">
          <h2>Create a key</h2>
          <form method="post" action="/ui/keys" class="inline" id="create-key">
            <input type="hidden" name="csrf" value="{{csrf}}">
            <label>Role <select name="role"><option>service</option><option>auditor</option><option>admin</option></select></label>
            <label>Name <input name="name" maxlength="200"></label>
            <button type="submit">Create</button>
          </form>
        </section>
        <div class="scroll">
        <table id="keys">
          <thead><tr><th>Key</th><th>Name</th><th>Role</th><th>Created</th><th>Revoked</th><th></th></tr></thead>
          <tbody>
          {{#keys}}
            <tr><td><code>{{id}}</code></td><td>{{name}}</td><td>{{role}}</td><td>{{created}}</td><td>{{revoked}}</td>
            <td>{{#live}}<form method="post" action="/ui/keys/{{id}}/revoke"><input type="hidden" name="csrf" value="{{csrf}}">
            <button type="submit" class="danger">Revoke</button></form>{{/live}}</td></tr>
          {{/keys}}
          </tbody>
        </table>
        </div>
        """

    static let css = """
        :root { --fg: #1b1f24; --muted: #5b6470; --line: #d8dde3; --bg: #f6f7f9; --card: #fff; --accent: #2450b2;
                --ok: #1d7a46; --bad: #b3261e; }
        * { box-sizing: border-box; }
        body { margin: 0; font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; color: var(--fg); background: var(--bg); }
        a { color: var(--accent); }
        code { font: 13px ui-monospace, SFMono-Regular, Menlo, monospace; word-break: break-all; }
        .top { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 20px; padding: 10px 20px; background: #111827; color: #fff; }
        .top a { color: #fff; text-decoration: none; }
        .top nav { display: flex; flex-wrap: wrap; gap: 14px; flex: 1; }
        .brand { font-weight: 700; }
        .who { display: flex; align-items: center; gap: 10px; font-size: 13px; }
        .role { background: #374151; border-radius: 4px; padding: 1px 6px; }
        main { max-width: 1100px; margin: 0 auto; padding: 16px 20px 40px; }
        h1 { font-size: 22px; margin: 8px 0 14px; }
        h2 { font-size: 16px; margin: 0 0 8px; }
        .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; margin: 0 0 16px; }
        .columns { display: grid; grid-template-columns: repeat(auto-fit, minmax(300px, 1fr)); gap: 16px; }
        .scroll { overflow-x: auto; background: var(--card); border: 1px solid var(--line); border-radius: 8px; }
        table { border-collapse: collapse; width: 100%; }
        th, td { text-align: left; padding: 7px 10px; border-bottom: 1px solid var(--line); vertical-align: top; }
        th { font-size: 13px; color: var(--muted); font-weight: 600; }
        .status { font-size: 12px; border-radius: 4px; padding: 1px 6px; background: #e5e7eb; }
        .status.active { background: #d1fae5; color: var(--ok); }
        .status.treatment { background: #dbeafe; color: var(--accent); }
        .meta, .hint, .empty { color: var(--muted); font-size: 13px; }
        .error { color: var(--bad); }
        .ok { color: var(--ok); }
        .definition dl { margin: 0; padding-left: 10px; border-left: 2px solid var(--line); }
        .definition dt { font-weight: 600; font-size: 13px; margin-top: 4px; }
        .definition dd { margin: 0 0 2px 8px; }
        .definition ol { margin: 0; padding-left: 18px; }
        .versions { list-style: none; padding: 0; margin: 0; }
        .versions li { border-top: 1px solid var(--line); padding: 8px 0; }
        .versions p { margin: 4px 0 0; }
        form.inline { display: flex; flex-wrap: wrap; gap: 10px; align-items: end; }
        input, select, button { font: inherit; padding: 6px 10px; border: 1px solid var(--line); border-radius: 6px; }
        button { background: var(--accent); color: #fff; border-color: var(--accent); cursor: pointer; }
        button.danger { background: #fff; color: var(--bad); border-color: var(--bad); }
        .top button { background: transparent; border-color: #6b7280; padding: 3px 10px; }
        body.signin main { max-width: 420px; padding-top: 12vh; }
        body.signin form { display: flex; flex-direction: column; gap: 10px; }
        """
}
