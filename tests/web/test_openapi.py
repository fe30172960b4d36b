from calltrack.app import App
from calltrack.web.openapi import OPERATIONS
from tests.conftest import Http


def test_the_document_describes_exactly_the_routes_served(http: Http, app: App) -> None:
    code, doc, _ = http.request("GET", "/openapi.json")
    assert code == 200 and doc["openapi"].startswith("3.1")
    described = {(m.upper(), path) for path, ops in doc["paths"].items() for m in ops}
    served = {(r.method, r.name) for r in app.router.routes()}
    assert described == served == set(OPERATIONS)
    assert doc["paths"]["/v1/number"]["get"]["security"] == []
    assert "security" not in doc["paths"]["/v1/pools"]["get"]  # the document default: an API key


def test_every_reference_resolves(http: Http) -> None:
    _, doc, _ = http.request("GET", "/openapi.json")

    def refs(node: object) -> list[str]:
        if isinstance(node, dict):
            return [node["$ref"]] if "$ref" in node else [r for v in node.values() for r in refs(v)]
        if isinstance(node, list):
            return [r for v in node for r in refs(v)]
        return []

    for ref in refs(doc):
        target = doc
        for part in ref.removeprefix("#/").split("/"):
            target = target[part]
