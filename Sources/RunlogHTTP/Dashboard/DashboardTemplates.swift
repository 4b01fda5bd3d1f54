/// The dashboard's Mustache templates and its style sheet, compiled into the binary (no files to
/// install beside it). `{{x}}` escapes; `{{{x}}}` is used only for HTML the pages escaped themselves.
enum DashboardTemplates {
    static let all: [String: String] = [
        "head": head, "layout": layout, "signin": signIn, "error": error, "workflows": workflows, "workflow": workflow,
        "log": log, "verify": verify, "keys": keys, "revert": revert, "diff": diff, "runs": runs, "run": run, "imports": imports,
        "activity": activity, "launch": launch, "job": job, "task": task, "importer_new": importerNew, "importer": importer, "import_run": importRun,
        "preview": preview,
    ]

    /// The start of every page, to its `<body>`: `title` names the page.
    static let head = """
        <!doctype html>
        <html lang="en">
        <head>
        <meta charset="utf-8">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <title>{{title}} · Runlog</title>
        <link rel="stylesheet" href="/ui/assets/dashboard.css">
        </head>
        """

    static let layout = """
        {{> head}}
        <body>
        <header class="top">
          <a class="brand" href="/ui/">Runlog</a>
          <nav>
            <a href="/ui/">Workflows</a>
            <a href="/ui/imports">Imports</a>
            <a href="/ui/launch">Jobs</a>
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
        {{> head}}
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
        {{> head}}
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
        {{#can_write}}
        <form method="post" action="/ui/workflows" class="inline card" id="new-workflow">
          <input type="hidden" name="csrf" value="{{csrf}}">
          <label>Name <input name="name" maxlength="200" required></label>
          <button type="submit">New workflow</button>
        </form>
        {{/can_write}}
        {{#empty}}<p class="empty">No workflows yet.</p>{{/empty}}
        {{^empty}}
        <div class="scroll">
        <table id="workflows">
          <thead><tr><th>#</th><th>Name</th><th>Status</th><th>Active</th><th>Latest</th><th>Rollout</th><th>Runs today</th></tr></thead>
          <tbody>
          {{#workflows}}
            <tr><td>{{number}}</td><td><a href="/ui/workflows/{{id}}">{{name}}</a></td>
            <td><span class="status {{status}}">{{status}}</span></td><td>{{active}}</td><td>{{latest}}</td><td>{{rollout}}</td><td class="runs-today">{{runs_today}}</td></tr>
          {{/workflows}}
          </tbody>
        </table>
        </div>
        {{/empty}}
        """

    static let workflow = """
        <p class="meta"><code>{{id}}</code> · created {{created}}{{#created_by}} by <code>{{created_by}}</code>{{/created_by}}
        · <a href="/ui/workflows/{{id}}/runs" id="runs-link">Runs</a></p>
        <div class="with-side">
        <div class="main-column">
        <section class="card" id="rollout"{{#rollout}} data-live="/ui/workflows/{{id}}/rollout/live"{{/rollout}}>
          <h2>Rollout</h2>
          {{#rollout}}
          <p>Treatment <strong>v{{treatment}}</strong> at <strong id="rollout-percentage">{{percentage}}</strong>%,
          control <strong>v{{control}}</strong> ({{status}}{{#sticky_field}}, sticky on <code>{{sticky_field}}</code>{{/sticky_field}}).</p>
          <p class="arms">Runs: treatment <strong id="treatment-runs" data-field="treatment">{{treatment_runs}}</strong>,
          control <strong id="control-runs" data-field="control">{{control_runs}}</strong>
          <span class="meta" id="treatment-share" data-field="share"></span></p>
          <table class="numbers" id="outcomes"><tbody>
            <tr><th>Treatment outcomes</th><td data-field="treatment_outcomes" id="treatment-outcomes">{{treatment_outcomes}}</td></tr>
            <tr><th>Control outcomes</th><td data-field="control_outcomes" id="control-outcomes">{{control_outcomes}}</td></tr>
          </tbody></table>
          {{#can_write}}
          <div class="actions">
            <form method="post" action="/ui/workflows/{{id}}/rollout/percentage" class="inline" id="change-rollout">
              <input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="version" value="{{version}}">
              <label>Percentage <input name="percentage" type="number" min="0" max="100" step="any" value="{{percentage}}" required></label>
              <button type="submit">Change</button>
            </form>
            <form method="post" action="/ui/workflows/{{id}}/rollout/promote" id="promote-rollout">
              <input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="version" value="{{version}}">
              <button type="submit">Promote (100%)</button>
            </form>
            <form method="post" action="/ui/workflows/{{id}}/rollout/end" id="end-rollout">
              <input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="version" value="{{version}}">
              <button type="submit" class="danger">End (0%)</button>
            </form>
          </div>
          {{/can_write}}
          {{/rollout}}
          {{^rollout}}
          <p class="empty">No rollout in progress.</p>
          {{#can_write}}{{#has_versions}}
          <form method="post" action="/ui/workflows/{{id}}/rollout" class="inline" id="stage-rollout">
            <input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="version" value="{{version}}">
            <label>Treatment <select name="rollout_version">{{#published}}<option value="{{number}}">v{{number}}</option>{{/published}}</select></label>
            <label>Percentage <input name="percentage" type="number" min="0" max="100" step="any" value="10" required></label>
            <label>Sticky field <input name="sticky_field" placeholder="(the run id)"></label>
            <button type="submit">Stage rollout</button>
          </form>
          <form method="get" action="/ui/workflows/{{id}}/preview" class="inline" id="preview-version">
            <label>Before staging, preview <select name="version">{{#published}}<option value="{{number}}">v{{number}}</option>{{/published}}</select></label>
            <button type="submit">against past runs</button>
          </form>
          {{/has_versions}}{{/can_write}}
          {{/rollout}}
        </section>
        <div class="columns">
          <section class="card definition" id="active">
            <h2>Active{{#active}} (v{{number}}){{/active}}</h2>
            {{#active}}{{{definition}}}{{/active}}
            {{^active}}<p class="empty">No active version.</p>{{/active}}
          </section>
          <section class="card definition" id="draft">
            <h2>Draft{{#draft}} (draft {{number}}, saved {{saved_at}}){{/draft}}</h2>
            {{#draft}}{{{definition}}}{{/draft}}
            {{^draft}}<p class="empty">No draft.</p>{{/draft}}
          </section>
        </div>
        {{#can_write}}
        <section class="card" id="edit">
          <h2>Edit the draft</h2>
          <form method="post" action="/ui/workflows/{{id}}/draft" id="save-draft">
            <input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="draft_version" value="{{draft_version}}">
            <textarea name="definition" rows="14" spellcheck="false">{{draft_text}}</textarea>
            <button type="submit">Save draft</button>
          </form>
          {{#publishable}}
          <form method="post" action="/ui/workflows/{{id}}/publish" class="inline" id="publish">
            <input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="version" value="{{version}}">
            <label>Description <input name="description" maxlength="2000"></label>
            {{#rollout_free}}<label class="check"><input type="checkbox" name="activate"> Activate</label>{{/rollout_free}}
            <button type="submit">Publish</button>
          </form>
          {{/publishable}}
          {{#draft}}<a class="button" id="preview-draft" href="/ui/workflows/{{id}}/preview">Preview against past runs</a>{{/draft}}
        </section>
        {{/can_write}}
        </div>
        <aside class="card side" id="versions">
          <h2>Version history</h2>
          {{^versions}}<p class="empty">Nothing published yet.</p>{{/versions}}
          <ol class="versions">
          {{#versions}}
            <li id="version-{{number}}"><strong>v{{number}}</strong> <span class="status {{status}}">{{status}}</span>
            <span class="meta">{{published_at}}{{#published_by}} · <code>{{published_by}}</code>{{/published_by}}
            {{#reverted_from}} · {{reverted_from}}{{/reverted_from}}</span>
            <p class="description">{{description}}</p>
            {{#can_write}}
            <div class="actions">
              <form method="post" action="/ui/workflows/{{id}}/versions/{{number}}/description" class="inline edit-description">
                <input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="version" value="{{version}}">
                <input name="description" value="{{description}}" maxlength="2000" aria-label="Description of v{{number}}">
                <button type="submit">Save description</button>
              </form>
              {{#activatable}}
              <form method="post" action="/ui/workflows/{{id}}/versions/{{number}}/activate">
                <input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="version" value="{{version}}">
                <button type="submit">Activate v{{number}}</button>
              </form>
              {{/activatable}}
              {{#is_admin}}<a class="button" href="/ui/workflows/{{id}}/revert?to={{number}}">Revert to v{{number}}…</a>{{/is_admin}}
            </div>
            {{/can_write}}
            </li>
          {{/versions}}
          </ol>
          {{#has_versions}}
          <form method="get" action="/ui/workflows/{{id}}/diff" class="inline" id="compare">
            <label>Compare <select name="from">{{#published}}<option>{{number}}</option>{{/published}}</select></label>
            <label>with <select name="to">{{#published}}<option>{{number}}</option>{{/published}}</select></label>
            <button type="submit">Show the difference</button>
          </form>
          {{/has_versions}}
        </aside>
        </div>
        <script src="/ui/assets/dashboard.js"></script>
        """

    static let runs = """
        <p><a href="/ui/workflows/{{id}}">Back to the workflow</a></p>
        <form method="get" class="inline card" id="run-filters">
          <label>Status <select name="status"><option value="">any</option>{{#statuses}}<option{{#selected}} selected{{/selected}}>{{value}}</option>{{/statuses}}</select></label>
          <label>Arm <select name="arm"><option value="">any</option>{{#arms}}<option{{#selected}} selected{{/selected}}>{{value}}</option>{{/arms}}</select></label>
          <label>Version <input name="version" type="number" min="1" value="{{version_filter}}"></label>
          <label>Source <select name="source"><option value="">any</option>{{#sources}}<option{{#selected}} selected{{/selected}}>{{value}}</option>{{/sources}}</select></label>
          <label>Since (UTC) <input name="since" type="datetime-local" value="{{since}}"></label>
          <button type="submit">Filter</button>
        </form>
        {{^runs}}<p class="empty">No runs.</p>{{/runs}}
        <div class="scroll">
        <table id="runs">
          <thead><tr><th>Run</th><th>Status</th><th>Arm</th><th>Version</th><th>Source</th><th>Route</th><th>Decision</th><th>Created</th></tr></thead>
          <tbody>
          {{#runs}}
            <tr><td><a href="/ui/runs/{{id}}"><code>{{id}}</code></a></td><td><span class="status {{status}}">{{status}}</span></td>
            <td>{{arm}}</td><td>v{{version}}</td><td>{{source}}</td><td>{{route}}</td><td>{{decision}}</td><td class="time">{{created}}</td></tr>
          {{/runs}}
          </tbody>
        </table>
        </div>
        <p class="pages">{{#next}}<a href="{{next}}" id="next-runs">Next</a>{{/next}}</p>
        """

    static let run = """
        <p><a href="/ui/workflows/{{workflow_id}}/runs">Runs of the workflow</a></p>
        <section class="card" id="run-summary">
          <p><span class="status {{status}}">{{status}}</span> · version <strong>v{{version}}</strong> · arm <strong>{{arm}}</strong>
          · {{queue}} · from {{source}}{{#object}} · object <code>{{object}}</code>{{/object}}</p>
          <p class="meta">created {{created}}{{#finished}}, finished {{finished}}{{/finished}} · created at log position {{created_position}}</p>
          <p>Route: <strong id="run-route">{{#route}}{{route}}{{/route}}{{^route}}not decided{{/route}}</strong>
          {{#decision}} · decision <strong id="run-decision">{{decision}}</strong>{{/decision}}</p>
          {{#failure}}<p class="error">{{failure}}</p>{{/failure}}
        </section>
        <section class="card definition"><h2>Inputs</h2>{{{parameters}}}</section>
        <section class="card"><h2>Steps</h2>
        {{^steps}}<p class="empty">No step has run.</p>{{/steps}}
        <div class="scroll"><table id="steps">
          <thead><tr><th>Step</th><th>Type</th><th>Status</th><th>Attempts</th><th>Started</th><th>Took</th><th>Result</th></tr></thead>
          <tbody>
          {{#steps}}<tr><td><code>{{uid}}</code></td><td>{{type}}</td><td>{{status}}</td><td>{{attempts}}</td>
          <td class="time">{{started}}</td><td>{{duration}}</td><td class="definition">{{{output}}}{{#error}}<span class="error">{{error}}</span>{{/error}}</td></tr>{{/steps}}
          </tbody>
        </table></div>
        </section>
        <section class="card"><h2>Events</h2>
        {{^events}}<p class="empty">This run has no stream of its own (an imported run: its creation is part of its batch's event at position {{created_position}}).</p>{{/events}}
        <div class="scroll"><table id="run-events">
          <thead><tr><th>Position</th><th>Recorded</th><th>Type</th></tr></thead>
          <tbody>{{#events}}<tr><td>{{position}}</td><td class="time">{{time}}</td><td>{{type}}</td></tr>{{/events}}</tbody>
        </table></div>
        </section>
        """

    static let imports = """
        <nav class="tabs"><a href="#sources">Data sources</a> <a href="#importers">Importers</a> <a href="#activity">Activity</a></nav>
        {{#can_write}}
        <section class="card" id="upload">
          <h2>Upload a CSV file</h2>
          <form method="post" enctype="multipart/form-data" action="/ui/data-sources/csv?csrf={{csrf}}" id="upload-form"
                data-csrf="{{csrf}}">
            <div class="drop" id="drop">Drop a CSV file here, or <input type="file" name="file" accept=".csv,text/csv" id="upload-file"></div>
            <label>Name <input name="name" id="upload-name" maxlength="200" required></label>
            <progress id="upload-progress" max="100" value="0" hidden></progress>
            <span id="upload-status" class="meta"></span>
            <button type="submit">Upload</button>
          </form>
        </section>
        <details class="card" id="s3-source">
          <summary>Or read from S3</summary>
          <form method="post" action="/ui/data-sources/s3" class="inline">
            <input type="hidden" name="csrf" value="{{csrf}}">
            <label>Name <input name="name" required></label>
            <label>Bucket <input name="bucket" required></label>
            <label>Key <input name="key"></label>
            <label>or prefix <input name="prefix"></label>
            <label>Region <input name="region" placeholder="us-east-1"></label>
            <label>Endpoint <input name="endpoint" placeholder="(AWS)"></label>
            <label>Access key id <input name="access_key_id" required autocomplete="off"></label>
            <label>Secret access key <input name="secret_access_key" type="password" required autocomplete="off"></label>
            <button type="submit">Add the S3 source</button>
          </form>
        </details>
        {{/can_write}}
        <h2 id="sources">Data sources</h2>
        {{^sources}}<p class="empty">No data sources yet.</p>{{/sources}}
        <div class="scroll"><table id="data-sources">
          <thead><tr><th>Name</th><th>Kind</th><th>Columns</th><th>Bytes</th><th>Created</th></tr></thead>
          <tbody>{{#sources}}<tr><td>{{name}} <code>{{id}}</code></td><td>{{kind}}{{#location}} <code>{{location}}</code>{{/location}}</td>
          <td>{{columns}}</td><td>{{bytes}}</td><td class="time">{{created}}</td></tr>{{/sources}}</tbody>
        </table></div>
        {{#can_write}}<form method="get" action="/ui/importers/new" class="inline card" id="new-importer">
          <label>Data source <select name="data_source_id">{{#sources}}<option value="{{id}}">{{name}}</option>{{/sources}}</select></label>
          <label>Workflow (active only) <select name="workflow_id">{{#active_workflows}}<option value="{{id}}">{{name}}</option>{{/active_workflows}}</select></label>
          <button type="submit">New importer…</button>
        </form>
        {{/can_write}}
        <h2 id="importers">Importers</h2>
        {{^importers}}<p class="empty">No importers yet.</p>{{/importers}}
        <div class="scroll"><table>
          <thead><tr><th>Importer</th><th>Workflow</th><th>Data source</th><th>Saved</th></tr></thead>
          <tbody>{{#importers}}<tr><td><a href="/ui/importers/{{id}}">{{name}}</a></td><td>{{workflow}} (v{{version}})</td>
          <td>{{source}}</td><td class="time">{{saved}}</td></tr>{{/importers}}</tbody>
        </table></div>
        <h2 id="activity">Activity</h2>
        {{> activity}}
        <script src="/ui/assets/dashboard.js"></script>
        """

    static let activity = """
        {{^activity}}<p class="empty">No importer runs yet.</p>{{/activity}}
        <div class="scroll"><table class="activity">
          <thead><tr><th>Run</th><th>Kick-off</th><th>Status</th><th>Rows read</th><th>Runs</th><th>Errored</th><th>Skipped</th><th>Started</th></tr></thead>
          <tbody>{{#activity}}<tr{{#running}} data-live="/ui/import-runs/{{id}}/live"{{/running}}><td><a href="/ui/import-runs/{{id}}"><code>{{id}}</code></a></td>
          <td>{{#dry_run}}dry run{{/dry_run}}{{^dry_run}}run{{/dry_run}}</td><td><span class="status {{status}}" data-field="status">{{status}}</span></td>
          <td data-field="rows_read">{{rows_read}}</td><td data-field="runs_created">{{runs_created}}</td>
          <td data-field="rows_errored">{{rows_errored}}</td><td data-field="rows_skipped">{{rows_skipped}}</td>
          <td class="time">{{started}}</td></tr>{{/activity}}</tbody>
        </table></div>
        """

    static let importerNew = """
        <p>From <strong>{{source}}</strong> into <strong>{{workflow}}</strong> (active version v{{active}}).</p>
        <form method="post" action="/ui/importers" id="importer-form" class="card">
          <input type="hidden" name="csrf" value="{{csrf}}">
          <input type="hidden" name="data_source_id" value="{{data_source_id}}">
          <input type="hidden" name="workflow_id" value="{{workflow_id}}">
          <label>Name <input name="name" value="{{name}}" maxlength="200" required></label>
          {{#api}}
          <h2>Mapping</h2>
          <p class="meta">Each column of the file to a parameter of the workflow ({{parameters}}); columns left unmapped are not read.</p>
          <table id="mapping"><thead><tr><th>Column</th><th>Parameter</th></tr></thead><tbody>
          {{#rows}}<tr><td><code>{{column}}</code><input type="hidden" name="column_{{index}}" value="{{column}}"></td>
          <td><select name="target_{{index}}"><option value="">(not mapped)</option>
          {{#targets}}<option value="{{path}}"{{#selected}} selected{{/selected}}>{{label}}</option>{{/targets}}</select></td></tr>{{/rows}}
          </tbody></table>
          {{/api}}
          {{#mapping_json}}
          <h2>Mapping</h2>
          <p class="meta">The workflow is triggered by {{kind}}: name the column with the object's token (docs/importers.md, "Mapping").</p>
          <textarea name="mapping_json" rows="6" spellcheck="false">{{mapping_json}}</textarea>
          {{/mapping_json}}
          <h2>Query box</h2>
          <p class="meta">Optional: computed columns and a condition on each row; rows it does not keep are skipped.</p>
          <textarea name="query" rows="5" spellcheck="false" placeholder='{"condition": {"amount": {"$gte": 50}}}'></textarea>
          <button type="submit">Save the importer</button>
        </form>
        """

    static let importer = """
        <p class="meta"><code>{{id}}</code> · into <a href="/ui/workflows/{{workflow_id}}">{{workflow}}</a> v{{version}}
        · from {{source}} · saved {{saved}} (revision {{revision}})</p>
        <div class="columns">
          <section class="card definition"><h2>Mapping</h2>{{{mapping}}}</section>
          <section class="card definition"><h2>Query box</h2>{{{query}}}</section>
        </div>
        {{#can_write}}
        <div class="actions card">
          <form method="post" action="/ui/importers/{{id}}/runs" id="dry-run">
            <input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="dry_run" value="true">
            <button type="submit">Dry run</button>
          </form>
          <form method="post" action="/ui/importers/{{id}}/runs" id="start-run">
            <input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="dry_run" value="false">
            <button type="submit">Run</button>
          </form>
        </div>
        {{/can_write}}
        <h2>Activity</h2>
        {{> activity}}
        <script src="/ui/assets/dashboard.js"></script>
        """

    static let importRun = """
        <p class="meta"><a href="/ui/importers/{{importer_id}}">The importer</a> · into <a href="/ui/workflows/{{workflow_id}}">the workflow</a>
        v{{version}} · {{#dry_run}}a dry run: nothing is created{{/dry_run}}{{^dry_run}}a run{{/dry_run}}</p>
        <section class="card" id="progress" {{#running}}data-live="/ui/import-runs/{{id}}/live"{{/running}}>
          <p>Status <span class="status {{status}}" data-field="status" id="import-status">{{status}}</span>
          {{#reason}}<span class="error">{{reason}}</span>{{/reason}}</p>
          <progress max="100" value="{{percent}}" data-field="percent"></progress>
          <table class="numbers"><tbody>
            <tr><th>Rows read</th><td data-field="rows_read" id="rows-read">{{rows_read}}</td></tr>
            <tr><th>{{runs_label}}</th><td data-field="runs_created" id="runs-created">{{runs_created}}</td></tr>
            <tr><th>Rows errored</th><td data-field="rows_errored" id="rows-errored">{{rows_errored}}</td></tr>
            <tr><th>Rows skipped</th><td data-field="rows_skipped">{{rows_skipped}}</td></tr>
          </tbody></table>
          <p class="meta">started {{started}}{{#finished}}, finished {{finished}}{{/finished}}</p>
          <p><a href="/ui/import-runs/{{id}}/errored-rows" id="download-errored">Download errored rows (CSV)</a>
          · <a href="/ui/import-runs/{{id}}/summary" id="download-summary">Download the summary (CSV)</a></p>
        </section>
        <section class="card" id="errors">
          <h2>Errored rows by reason</h2>
          {{^by_reason}}<p class="empty">No errored rows.</p>{{/by_reason}}
          <table id="by-reason"><thead><tr><th>Reason</th><th>Rows</th></tr></thead><tbody>{{#by_reason}}<tr><td>{{error}}</td><td>{{rows}}</td></tr>{{/by_reason}}</tbody></table>
          <div class="scroll"><table id="errored-rows">
            <thead><tr><th>Row</th><th>Line</th><th>Column</th><th>Value</th><th>Error</th></tr></thead>
            <tbody>{{#errors}}<tr><td>{{row}}</td><td>{{line}}</td><td><code>{{field}}</code></td><td><code>{{value}}</code></td><td>{{error}}</td></tr>{{/errors}}</tbody>
          </table></div>
        </section>
        <section class="card" id="created-runs">
          <h2>Runs created</h2>
          {{^created}}<p class="empty">None (yet).</p>{{/created}}
          <ol class="plain">{{#created}}<li>row {{row}}: <a href="/ui/runs/{{id}}"><code>{{id}}</code></a> {{status}}</li>{{/created}}</ol>
          {{#more_created}}<p class="meta">{{more_created}} runs in all (GET /v1/import-runs/{{id}}/runs pages them).</p>{{/more_created}}
        </section>
        <script src="/ui/assets/dashboard.js"></script>
        """

    static let launch = """
        <h2>Jobs</h2>
        <p class="meta">Jobs scheduled through the launch API (<code>POST /v3/workflows/{uid}/schedule</code>), newest first.</p>
        {{^jobs}}<p class="empty">No jobs yet.</p>{{/jobs}}
        <div class="scroll"><table id="jobs">
          <thead><tr><th>Job</th><th>Project</th><th>Workflow</th><th>Status</th><th>Runs</th><th>Completed</th><th>Failed</th><th>Pending</th><th>Created</th></tr></thead>
          <tbody>{{#jobs}}<tr><td><a href="/ui/jobs/{{id}}">{{name}}</a></td><td>{{project}}</td>
          <td><a href="/ui/workflows/{{workflow_id}}">v{{version}}</a></td><td><span class="status">{{status}}</span></td>
          <td>{{total}}</td><td>{{completed}}</td><td>{{failed}}</td><td>{{pending}}</td><td class="time">{{created}}</td></tr>{{/jobs}}</tbody>
        </table></div>
        {{#tasks}}
        <h2>Batch tasks</h2>
        <form method="get" action="/ui/tasks" class="inline card" id="task-lookup">
          <label>Task id <input name="task_id" required></label>
          <button type="submit">Show the task</button>
        </form>
        {{/tasks}}
        <h2>Integration accounts</h2>
        <p class="meta">Secrets are sealed at rest; only whether an account has them is shown.</p>
        {{^accounts}}<p class="empty">No integration accounts.</p>{{/accounts}}
        <div class="scroll"><table id="accounts">
          <thead><tr><th>Account</th><th>Project</th><th>Integration</th><th>Name</th><th>User</th><th>Secrets</th><th>Updated</th></tr></thead>
          <tbody>{{#accounts}}<tr><td><code>{{uid}}</code></td><td>{{project}}</td><td>{{integration}}</td><td>{{name}}</td>
          <td>{{username}}</td><td>{{secrets}}</td><td class="time">{{updated}}</td></tr>{{/accounts}}</tbody>
        </table></div>
        """

    static let job = """
        <p class="meta"><code>{{id}}</code> · project {{project}} · <a href="/ui/workflows/{{workflow_id}}">workflow</a> v{{version}}
        · created {{created}}</p>
        <section class="card" id="job-summary">
          <p>Status <span class="status">{{status}}</span>: {{total}} runs, {{completed}} completed, {{failed}} failed,
          {{cancelled}} cancelled, {{pending}} queued or running.</p>
          {{#has_steps}}<table><thead><tr><th>Step</th><th>Accounts</th><th>Output column</th></tr></thead>
          <tbody>{{#steps}}<tr><td><code>{{uid}}</code></td><td>{{accounts}}</td><td>{{output_column}}</td></tr>{{/steps}}</tbody></table>{{/has_steps}}
        </section>
        <div class="scroll"><table id="job-results">
          <thead><tr><th>Input</th><th>Run</th><th>Status</th><th>Decision</th><th>Parameters</th></tr></thead>
          <tbody>{{#results}}<tr><td>{{index}}</td><td><a href="/ui/runs/{{id}}"><code>{{id}}</code></a></td><td>{{status}}</td>
          <td>{{decision}}{{#failure}}<span class="error">{{failure}}</span>{{/failure}}</td><td class="definition">{{{input}}}</td></tr>{{/results}}</tbody>
        </table></div>
        {{#more}}<p class="meta">{{more}} runs in all: <code>GET /v3/jobs/{{id}}/results</code> pages them.</p>{{/more}}
        """

    static let task = """
        <section class="card" id="task-status">
          <p>Status <span class="status">{{status}}</span>, {{progress}}% done: {{succeeded}} succeeded, {{failed}} failed.</p>
        </section>
        <section class="card definition"><h2>Result</h2>{{{result}}}</section>
        <p><a href="/ui/launch">Back to jobs and tasks</a></p>
        """

    static let revert = """
        <section class="card" id="confirm-revert">
          <p>Version <strong>v{{to}}</strong> ({{description}}) is published again as <strong>v{{next}}</strong>.</p>
          {{#rollout}}<p class="error">A rollout is in progress: v{{next}} cannot become active until it is promoted or ended.</p>{{/rollout}}
          {{^rollout}}<p>With "activate", <strong>v{{next}}</strong> becomes the active version in place of {{active}}.</p>{{/rollout}}
          <form method="post" action="/ui/workflows/{{id}}/revert" class="inline">
            <input type="hidden" name="csrf" value="{{csrf}}"><input type="hidden" name="version" value="{{version}}">
            <input type="hidden" name="to" value="{{to}}">
            {{^rollout}}<label class="check"><input type="checkbox" name="activate" checked> Activate v{{next}}</label>{{/rollout}}
            <button type="submit" id="confirm">Revert to v{{to}}</button>
            <a href="/ui/workflows/{{id}}">Cancel</a>
          </form>
        </section>
        """

    static let diff = """
        <p><a href="/ui/workflows/{{id}}">Back to the workflow</a></p>
        {{#same}}<p class="empty">v{{from}} and v{{to}} have the same definition.</p>{{/same}}
        <pre class="diff" id="diff">{{#lines}}<span class="{{kind}}">{{text}}</span>
        {{/lines}}</pre>
        """

    static let preview = """
        <p><a href="/ui/workflows/{{id}}">Back to the workflow</a></p>
        <form method="get" class="inline card" id="preview-form">
          <label>Candidate <select name="version"><option value="">the draft</option>{{#published}}<option value="{{number}}"{{#selected}} selected{{/selected}}>v{{number}}</option>{{/published}}</select></label>
          <label>Latest runs <input name="runs" type="number" min="1" max="100000" value="{{runs}}"></label>
          <button type="submit">Preview</button>
        </form>
        <section class="card" id="preview-summary">
          <p>{{candidate}} against the latest <strong>{{total}}</strong> runs (log up to position {{position}}):
          <strong id="preview-changed">{{changed}}</strong> would change, <strong id="preview-unchanged">{{unchanged}}</strong> would not{{#not_evaluated_total}}, {{not_evaluated_total}} could not be evaluated{{/not_evaluated_total}}.</p>
          <p class="meta">Each run is evaluated on its own inputs with objects and lists as they were when it chose its route, beside its own version. Nothing was appended, no request was made and no run was started.</p>
          {{#unknown}}<p class="meta">{{unknown}} runs meet an <code>http_request</code> step whose answer is not known (changed, or never reached); later steps assume it succeeded.</p>{{/unknown}}
          {{#drift}}<p class="meta">{{drift}} runs recorded another route or decision than their own version gives here.</p>{{/drift}}
        </section>
        <section class="card">
          <h2>Before → after</h2>
          {{^cells}}<p class="empty" id="preview-none">No run's outcome would change.</p>{{/cells}}
          {{#has_cells}}
          <div class="scroll"><table class="numbers" id="preview-matrix"><thead><tr><th>Before</th><th>After</th><th>Runs</th></tr></thead><tbody>
          {{#cells}}<tr><td>{{before}}</td><td>{{after}}</td><td>{{runs}}</td></tr>{{/cells}}
          </tbody></table></div>
          {{/has_cells}}
        </section>
        {{#cells}}
        <section class="card preview-cell">
          <h2>{{before}} → {{after}}: {{runs}} runs</h2>
          <div class="scroll"><table class="examples"><thead><tr><th>Run</th><th>Position</th><th>Changed</th><th>Before</th><th>After</th></tr></thead><tbody>
          {{#examples}}<tr><td><a href="/ui/runs/{{run_id}}"><code>{{run_id}}</code></a></td><td>{{position}}</td><td>{{changed}}</td><td>{{before}}</td><td>{{after}}</td></tr>{{/examples}}
          </tbody></table></div>
        </section>
        {{/cells}}
        {{#not_evaluated}}<p class="meta">Not evaluated: {{runs}} runs: {{reason}}</p>{{/not_evaluated}}
        """

    static let log = """
        <p class="meta">Head: position <strong id="head-position">{{head_position}}</strong>,
        hash <code id="head-hash">{{head_hash}}</code> · <a href="/ui/log/verify" id="verify">Verify the chain</a></p>
        <form method="get" action="/ui/log" class="inline card" id="log-filters">
          <label>Type <input name="type" value="{{type}}" placeholder="run.completed"></label>
          <label>Stream prefix <input name="stream_prefix" value="{{stream_prefix}}" placeholder="workflow-"></label>
          <button type="submit">Filter</button>
          <label class="check"><input type="checkbox" id="follow" data-follow="{{live}}"> Follow new events</label>
        </form>
        <div class="scroll">
        <table id="events">
          <thead><tr><th>Position</th><th>Recorded</th><th>Stream</th><th>Type</th><th>Actor</th></tr></thead>
          <tbody>
          {{#events}}
            <tr><td>{{position}}</td><td class="time">{{time}}</td><td><code>{{stream}}</code></td><td>{{type}}</td><td><code>{{actor}}</code></td></tr>
          {{/events}}
          </tbody>
        </table>
        </div>
        {{#searched}}<p class="meta" id="searched">Searched positions {{from}} to {{to}}: older matches may be further back.</p>{{/searched}}
        <p class="pages">{{#newest}}<a href="{{newest}}">Newest</a>{{/newest}} {{#older}}<a href="{{older}}" id="older">Older</a>{{/older}}</p>
        <script src="/ui/assets/dashboard.js"></script>
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
        <section class="card" id="limits">
          <h2>Rate limits and quota</h2>
          <p>Runs today ({{quota_day}}, UTC): <strong id="quota-used">{{quota_used}}</strong> of {{quota_limit}},
          resets {{quota_resets}}. Requests: {{rate_limit}} (counted by each server node).</p>
        </section>
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

    /// The dashboard's script: elements with `data-live` follow the Server-Sent Events of that URL.
    static let script = """
        // Elements with data-live follow the Server-Sent Events of that URL: each message's fields go
        // to the elements inside with a matching data-field (a rollout's arms, an import's progress).
        for (const element of document.querySelectorAll("[data-live]")) {
          const source = new EventSource(element.dataset.live);
          const show = (message) => {
            const fields = JSON.parse(message.data);
            if (!fields) return;
            for (const [name, value] of Object.entries(fields)) {
              for (const target of element.querySelectorAll('[data-field="' + name + '"]')) {
                if (target.tagName === "PROGRESS") target.value = value; else target.textContent = value;
              }
            }
            if ("treatment" in fields && "control" in fields) {
              const total = fields.treatment + fields.control;
              const share = element.querySelector('[data-field="share"]');
              if (share) share.textContent = total ? "(" + Math.round(100 * fields.treatment / total) + "% treatment)" : "";
            }
            if (fields.status && fields.status !== "running") { source.close(); location.reload(); }
          };
          source.addEventListener("arms", show);
          source.addEventListener("progress", show);
        }
        // The log page's "Follow": new events on top of the table as they commit.
        const follow = document.getElementById("follow");
        if (follow) {
          let source = null;
          follow.addEventListener("change", () => {
            if (source) { source.close(); source = null; }
            if (!follow.checked) return;
            source = new EventSource(follow.dataset.follow);
            source.addEventListener("log", (message) => {
              const event = JSON.parse(message.data);
              const row = document.createElement("tr");
              for (const name of ["position", "time", "stream", "type", "actor"]) {
                const cell = document.createElement("td");
                cell.textContent = event[name];
                row.appendChild(cell);
              }
              document.querySelector("#events tbody").prepend(row);
              document.getElementById("head-position").textContent = event.position;
            });
          });
        }
        // The upload: drag and drop or choose a file; sent with its progress shown.
        const form = document.getElementById("upload-form");
        if (form) {
          const drop = document.getElementById("drop");
          const input = document.getElementById("upload-file");
          const name = document.getElementById("upload-name");
          const chosen = () => { if (input.files.length && !name.value) name.value = input.files[0].name.replace(/\\.csv$/i, ""); };
          input.addEventListener("change", chosen);
          drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
          drop.addEventListener("dragleave", () => drop.classList.remove("over"));
          drop.addEventListener("drop", (event) => {
            event.preventDefault();
            drop.classList.remove("over");
            input.files = event.dataTransfer.files;
            chosen();
          });
          form.addEventListener("submit", (event) => {
            event.preventDefault();
            if (!input.files.length) return;
            const progress = document.getElementById("upload-progress");
            const status = document.getElementById("upload-status");
            const request = new XMLHttpRequest();
            request.open("POST", "/ui/data-sources/csv?name=" + encodeURIComponent(name.value));
            request.setRequestHeader("X-CSRF-Token", form.dataset.csrf);
            request.setRequestHeader("Content-Type", "text/csv");
            progress.hidden = false;
            request.upload.addEventListener("progress", (e) => { if (e.lengthComputable) progress.value = 100 * e.loaded / e.total; });
            request.addEventListener("load", () => {
              if (request.status < 400) { location.href = "/ui/imports"; return; }
              const page = new DOMParser().parseFromString(request.responseText, "text/html");
              const message = page.getElementById("error-message");
              status.textContent = "Not uploaded: " + (message ? message.textContent : request.status);
              status.className = "error";
            });
            request.addEventListener("error", () => { status.textContent = "Not uploaded: the connection failed"; });
            request.send(input.files[0]);
          });
        }
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
        textarea { width: 100%; font: 13px ui-monospace, SFMono-Regular, Menlo, monospace; padding: 8px; border: 1px solid var(--line);
                   border-radius: 6px; margin-bottom: 8px; }
        .actions { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin-top: 6px; }
        #edit form + form { margin-top: 10px; }
        a.button { display: inline-block; padding: 6px 10px; border: 1px solid var(--accent); border-radius: 6px; text-decoration: none; }
        label.check { display: flex; gap: 6px; align-items: center; }
        td.time, .time { white-space: nowrap; }
        pre.diff { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 10px; overflow-x: auto; font-size: 13px; }
        pre.diff .added { background: #dcfce7; display: block; }
        pre.diff .added::before { content: "+ "; }
        pre.diff .removed { background: #fee2e2; display: block; }
        pre.diff .removed::before { content: "- "; }
        pre.diff .same { display: block; }
        .with-side { display: grid; grid-template-columns: minmax(0, 1fr) 340px; gap: 16px; align-items: start; }
        .with-side .columns { grid-template-columns: repeat(auto-fit, minmax(240px, 1fr)); }
        aside.side .actions, aside.side form.inline { flex-direction: column; align-items: stretch; }
        @media (max-width: 900px) { .with-side { grid-template-columns: minmax(0, 1fr); } }
        .drop { border: 2px dashed var(--line); border-radius: 8px; padding: 18px; margin-bottom: 10px; text-align: center; }
        .drop.over { border-color: var(--accent); background: #eef2ff; }
        #upload-form { display: flex; flex-direction: column; gap: 8px; align-items: flex-start; }
        nav.tabs { display: flex; gap: 14px; margin-bottom: 12px; }
        table.numbers th { width: 12em; }
        ol.plain { padding-left: 18px; }
        progress { width: 100%; max-width: 420px; }
        pre.diff .same::before { content: "  "; }
        """
}
