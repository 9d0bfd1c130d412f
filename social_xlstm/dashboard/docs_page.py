"""The /docs page: a plain API reference rendered from the OpenAPI schema, with no script from a CDN."""

from __future__ import annotations

import html


def docs_html(schema: dict) -> str:
    """A plain API reference rendered from the OpenAPI schema, with no script from a CDN."""
    out = [
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(schema['info']['title'])} API</title>",
        "<link rel='stylesheet' href='/static/style.css'></head><body class='docs'>",
        f"<h1>{html.escape(schema['info']['title'])} API <small>{html.escape(schema['info']['version'])}</small></h1>",
        f"<p>{html.escape(schema['info'].get('description', ''))} Machine-readable schema: "
        "<a href='/openapi.json'>/openapi.json</a>. "
        "Every endpoint is a GET (a request with a body gets 413); "
        f'errors are JSON <code>{{"detail": ...}}</code>.</p>',
    ]
    components = schema.get("components", {}).get("schemas", {})
    for path, methods in schema.get("paths", {}).items():
        for method, op in methods.items():
            out.append(
                f"<h2><code>{method.upper()} {html.escape(path)}</code></h2><p>{html.escape(op.get('summary', ''))}</p>"
            )
            params = op.get("parameters", [])
            if params:
                out.append(
                    "<table><tr><th>parameter</th><th>in</th><th>type and limits</th>"
                    "<th>default</th><th>description</th></tr>"
                )
                for p in params:
                    s = p.get("schema", {})
                    limits = ", ".join(f"{k} {s[k]}" for k in ("minimum", "maximum", "maxLength") if k in s)
                    out.append(
                        "<tr>"
                        + "".join(
                            f"<td>{html.escape(str(v))}</td>"
                            for v in (
                                p["name"],
                                p["in"],
                                s.get("type", "") + (f" ({limits})" if limits else ""),
                                s.get("default", ""),
                                p.get("description", ""),
                            )
                        )
                        + "</tr>"
                    )
                out.append("</table>")
            codes = ", ".join(f"{code} {r.get('description', '')}" for code, r in op.get("responses", {}).items())
            out.append(f"<p>responses: {html.escape(codes)}</p>")
            ref = (
                op.get("responses", {})
                .get("200", {})
                .get("content", {})
                .get("application/json", {})
                .get("schema", {})
                .get("$ref", "")
            )
            fields = components.get(ref.rsplit("/", 1)[-1], {}).get("properties", {})
            if fields:
                out.append(
                    "<p>returns:</p><ul>"
                    + "".join(
                        f"<li><code>{html.escape(name)}</code> {html.escape(f.get('description', ''))}</li>"
                        for name, f in fields.items()
                    )
                    + "</ul>"
                )
    out.append("</body></html>")
    return "".join(out)
