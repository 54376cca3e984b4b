"""New-account limits under PARLEY_TRUST=standard (CONTRACT rev. 3 "Trust and spam"): links, images and mentions
counted on the rendered post, however they were written (422 field body), and threads a day (429)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from api_support import check_error
from server import trust
from support.api import Api, new_thread
from support.databases import db_fetch
from support.inprocess import InProcessApp, settings_for

LINKS = {
    "bare URL": "see http://a.example/x",
    "autolink": "<http://b.example>",
    "inline": "[here](http://c.example)",
    "reference": "[ref][1]\n\n[1]: http://d.example",
    "entity-escaped": "[x](&#104;ttp://e.example)",
    "raw HTML": '<a href="http://f.example">f</a>',
    "foreign image": "![i](http://img.example/a.png)",  # shown as a link: counted as one
}


def test_count_is_on_the_rendered_post():
    """Links, images and mentions are counted in the HTML: an in-page anchor and code are no links."""
    assert trust.count('<p><a href="http://x" rel="nofollow">x</a> <a class="mention" href="/u/ada">@ada</a>'
                       ' <a href="#top">t</a> <img src="/uploads/a.png" alt=""> <code>http://y</code></p>') == (1, 1, 1)


@pytest.mark.parametrize("how", list(LINKS))
def test_a_third_link_is_refused_however_it_is_written(standard, std_forum, how):
    """Two plain links plus one written this way → 422 field body naming the limit; two links pass."""
    me = Api(standard.url).sign_up()
    tid = new_thread(std_forum["mod"], std_forum["category"])["thread"]["id"]
    two = "http://one.example and http://two.example\n\n"
    assert me.post(f"/api/threads/{tid}/posts", json={"body": two}).status_code == 201
    err = check_error(me.post(f"/api/threads/{tid}/posts", json={"body": two + LINKS[how]}), 422, field="body")
    assert "at most 2 links" in err["message"]


def test_mentions_and_edits_are_limited_too(standard, std_forum, pg_url):
    """Four mentions → 422; an edit that adds a third link → 422; at 10 reputation the limits are gone."""
    me = Api(standard.url).sign_up()
    names = [Api(standard.url).sign_up().user["username"] for _ in range(4)]  # type: ignore[index]
    tid = new_thread(std_forum["mod"], std_forum["category"])["thread"]["id"]
    mentions = " ".join(f"@{n}" for n in names)
    err = check_error(me.post(f"/api/threads/{tid}/posts", json={"body": mentions}), 422, field="body")
    assert "at most 3 mentions" in err["message"]
    assert me.post(f"/api/threads/{tid}/posts", json={"body": " ".join(f"@{n}" for n in names[:3])}).status_code == 201
    post = me.post(f"/api/threads/{tid}/posts", json={"body": "http://a.example http://b.example"}).json()["post"]
    check_error(me.patch(f"/api/posts/{post['id']}", json={"body": "http://a.example http://b.example "
                                                                     "<http://c.example>"}), 422, field="body")
    db_fetch(pg_url, "UPDATE users SET reputation = 10 WHERE id = $1", me.user["id"])  # type: ignore[index]
    assert me.post(f"/api/threads/{tid}/posts", json={"body": mentions + " http://a.example http://b.example"
                                                      " http://c.example"}).status_code == 201


def test_open_has_no_new_account_limits(server, forum):
    """Under open a new member's post may hold many links and mentions."""
    me = Api(server.url).sign_up()
    tid = new_thread(me, forum["category"])["thread"]["id"]
    body = " ".join(f"http://{i}.example" for i in range(6))
    assert me.post(f"/api/threads/{tid}/posts", json={"body": body}).status_code == 201


@pytest.fixture(scope="module")
def limited(pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[InProcessApp]:
    """standard with rate limits on."""
    running = InProcessApp(settings_for(pg_url, tmp_path_factory.mktemp("lim"), trust="standard",
                                        rate_limits_enabled=True, db_pool_size=2)).start()
    yield running
    running.stop()


def test_a_new_account_opens_three_threads_a_day(limited, std_forum, pg_url):
    """The fourth thread of a day → 429 with Retry-After; a member at 10 reputation is not held to it."""
    me = Api(limited.url).sign_up()
    for i in range(3):
        assert me.post("/api/threads", json={"category": std_forum["category"], "title": f"T{i}",
                                             "body": "b"}).status_code == 201
    r = me.post("/api/threads", json={"category": std_forum["category"], "title": "T4", "body": "b"})
    check_error(r, 429)
    assert 80_000 < int(r.headers["retry-after"]) <= 86_400
    db_fetch(pg_url, "UPDATE users SET reputation = 10 WHERE id = $1", me.user["id"])  # type: ignore[index]
    assert me.post("/api/threads", json={"category": std_forum["category"], "title": "T4",
                                         "body": "b"}).status_code == 201




def test_threads_a_day_holds_when_requests_race(limited, std_forum):
    """Six new threads sent at once by a new account: exactly three are opened, the others 429."""
    from concurrent.futures import ThreadPoolExecutor
    me = Api(limited.url).sign_up()

    def open_one(i: int) -> int:
        return me.post("/api/threads", json={"category": std_forum["category"], "title": f"Race {i}",
                                             "body": "b"}).status_code

    with ThreadPoolExecutor(6) as pool:
        codes = sorted(pool.map(open_one, range(6)))
    assert codes == [201, 201, 201, 429, 429, 429]
