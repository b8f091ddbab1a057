"""What Shortly does, through its HTTP API, on the database at DATABASE_URL."""
import pytest

import shortly


def create(client, url, **extra):
    response = client.post("/api/links", json={"url": url, **extra})
    assert response.status_code == 201, response.get_data(as_text=True)
    return response.get_json()


def test_a_new_link_has_a_code_a_short_url_and_its_page_s_title(client):
    link = create(client, "https://example.com/a/long/page")
    assert len(link["code"]) == shortly.CODE_LENGTH
    assert link["short_url"].endswith("/" + link["code"])
    assert link["title"] == "Title of https://example.com/a/long/page"


@pytest.mark.parametrize("url", ["", "ftp://example.com/", "example.com"])
def test_only_web_urls_are_shortened(client, url):
    assert client.post("/api/links", json={"url": url}).status_code == 400


def test_following_a_link_redirects_and_counts_the_click(client):
    link = create(client, "https://example.com/")
    for _ in range(3):
        response = client.get(f"/{link['code']}")
        assert response.status_code == 302
        assert response.headers["Location"] == "https://example.com/"
    assert client.get(f"/api/links/{link['code']}").get_json()["clicks"] == 3


def test_an_unknown_or_expired_link_is_not_found(client):
    assert client.get("/nosuch").status_code == 404
    gone = create(client, "https://example.com/old", ttl_seconds=0)
    assert client.get(f"/{gone['code']}").status_code == 404


def test_top_sites_add_up_the_links_and_clicks_of_each_site(client):
    first = create(client, "https://example.com/")
    second = create(client, "https://example.com/")
    other = create(client, "https://example.org/")
    for code, clicks in ((first["code"], 2), (second["code"], 1), (other["code"], 1)):
        for _ in range(clicks):
            client.get(f"/{code}")
    create(client, "https://example.net/", ttl_seconds=0)  # expired: not a top site
    sites = client.get("/api/top").get_json()["sites"]
    assert [(s["url"], s["links"], s["clicks"]) for s in sites] == [
        ("https://example.com/", 2, 3), ("https://example.org/", 1, 1)]
    assert sites[0]["title"] == "Title of https://example.com/"
    page = client.get("/top")
    assert page.status_code == 200 and "Title of https://example.org/" in page.get_data(as_text=True)
