"""A hypothesis state machine: random writes and reads through the public
API (``Index.upsert / update / delete / build / query / fetch / list /
describe_index_stats``) checked against a plain dict model, with exact
search (``nprobe`` past the cluster count).

``machine(open_store)`` returns the machine class for stores made by
``open_store() -> VecStore`` (a fresh, empty store per example): the local
run is in ``tests/unit/test_write_model.py``, the S3 (moto) run in
``tests/integration/test_write_model_s3.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from vecstore import Index, VecStore

D = 4
IDS = [f"{p}{i}" for p in ("a", "b") for i in range(12)]
NS = "ns"
GROUPS = (0, 1, 2)
NPROBE = 10_000  # every cluster: exact search

ids_ = st.sampled_from(IDS)
vec_ = st.lists(st.integers(-4, 4), min_size=D, max_size=D).map(lambda v: [float(x) / 2 for x in v])
meta_ = st.one_of(st.none(), st.fixed_dictionaries({"g": st.sampled_from(GROUPS)}))
records_ = st.lists(st.tuples(ids_, vec_, meta_), min_size=1, max_size=8)


def machine(open_store: Callable[[], VecStore]) -> type[RuleBasedStateMachine]:
    class WriteModel(RuleBasedStateMachine):
        def __init__(self) -> None:
            super().__init__()
            vs = open_store()
            vs.create_index(name="m", dimension=D, metric="euclidean")
            self.index: Index = vs.Index("m")
            self.model: dict[str, tuple[list[float], dict[str, Any] | None]] = {}
            self.exists = False

        # ---------------------------------------------------------- writes
        @rule(recs=records_, form=st.sampled_from(["tuple", "dict"]))
        def upsert(self, recs: list[tuple[str, list[float], Any]], form: str) -> None:
            if form == "tuple":
                batch: list[Any] = [(i, v, m) if m is not None else (i, v) for i, v, m in recs]
            else:
                batch = [{"id": i, "values": v, "metadata": m} for i, v, m in recs]
            res = self.index.upsert(batch, namespace=NS)
            assert res.upserted_count == len(recs)
            for i, v, m in recs:
                self.model[i] = (v, m)
            self.exists = True

        @rule(id_=ids_, vec=st.one_of(st.none(), vec_), g=st.sampled_from(GROUPS))
        def update_by_id(self, id_: str, vec: list[float] | None, g: int) -> None:
            res = self.index.update(id_, values=vec, set_metadata={"g": g}, namespace=NS)
            if id_ in self.model:
                v, m = self.model[id_]
                self.model[id_] = (vec if vec is not None else v, {**(m or {}), "g": g})
            assert res.matched_records == (1 if id_ in self.model else 0)

        @precondition(lambda self: self.exists)
        @rule(g=st.sampled_from(GROUPS), h=st.integers(0, 3))
        def update_by_filter(self, g: int, h: int) -> None:
            hit = [i for i, (_, m) in self.model.items() if m is not None and m.get("g") == g]
            res = self.index.update(filter={"g": g}, set_metadata={"h": h}, namespace=NS)
            assert res.matched_records == len(hit)
            for i in hit:
                v, m = self.model[i]
                self.model[i] = (v, {**(m or {}), "h": h})

        @rule(ids=st.lists(ids_, min_size=1, max_size=5))
        def delete_ids(self, ids: list[str]) -> None:
            self.index.delete(ids=ids, namespace=NS)
            for i in ids:
                self.model.pop(i, None)

        @precondition(lambda self: self.exists)
        @rule(g=st.sampled_from(GROUPS))
        def delete_by_filter(self, g: int) -> None:
            self.index.delete(filter={"g": {"$eq": g}}, namespace=NS)
            for i in [i for i, (_, m) in self.model.items() if m and m.get("g") == g]:
                del self.model[i]

        @precondition(lambda self: self.exists)
        @rule()
        def delete_all(self) -> None:
            self.index.delete(delete_all=True, namespace=NS)
            self.model.clear()

        @rule()
        def build(self) -> None:
            res = self.index.build(namespace=NS if self.exists else None)
            assert all(r.status in ("built", "nothing") for r in res.values())

        # ----------------------------------------------------------- reads
        @precondition(lambda self: self.exists)
        @rule(q=vec_, k=st.integers(1, 30), g=st.one_of(st.none(), st.sampled_from(GROUPS)))
        def query(self, q: list[float], k: int, g: int | None) -> None:
            flt = None if g is None else {"g": g}
            got = self.index.query(
                vector=q, top_k=k, namespace=NS, filter=flt, nprobe=NPROBE, include_metadata=True
            )
            pool = {
                i: v
                for i, (v, m) in self.model.items()
                if g is None or (m is not None and m.get("g") == g)
            }
            qv = np.asarray(q, dtype=np.float64)
            truth = {i: float(((np.asarray(v) - qv) ** 2).sum()) for i, v in pool.items()}
            want = sorted(truth.values())[:k]
            ids = [m.id for m in got.matches]
            assert len(ids) == len(set(ids)) == len(want), (ids, want)
            # any correct top k (vectors may tie): the scores are the best k
            assert np.allclose([m.score for m in got.matches], want, atol=1e-4)
            for m in got.matches:
                assert m.id in pool
                assert abs(m.score - truth[m.id]) < 1e-4
                assert m.metadata == self.model[m.id][1]

        @precondition(lambda self: self.exists)
        @rule(id_=ids_, k=st.integers(1, 5))
        def query_by_id(self, id_: str, k: int) -> None:
            got = self.index.query(id=id_, top_k=k, namespace=NS, nprobe=NPROBE)
            if id_ not in self.model:
                assert got.matches == []
                return
            q = np.asarray(self.model[id_][0], dtype=np.float64)
            truth = sorted(float(((np.asarray(v) - q) ** 2).sum()) for v, _ in self.model.values())
            assert np.allclose([m.score for m in got.matches], truth[:k], atol=1e-4)

        @rule(ids=st.lists(ids_, min_size=1, max_size=6, unique=True))
        def fetch(self, ids: list[str]) -> None:
            got = self.index.fetch(ids, namespace=NS).vectors
            assert set(got) == {i for i in ids if i in self.model}
            for i, vec in got.items():
                v, m = self.model[i]
                assert vec.values == v and vec.metadata == m

        @rule(prefix=st.sampled_from(["", "a", "b1"]), limit=st.integers(1, 7))
        def list_ids(self, prefix: str, limit: int) -> None:
            pages = list(self.index.list(prefix=prefix, limit=limit, namespace=NS))
            assert all(0 < len(p) <= limit for p in pages)
            flat = [i for p in pages for i in p]
            assert flat == sorted(i for i in self.model if i.startswith(prefix))

        @invariant()
        def counts(self) -> None:
            stats = self.index.describe_index_stats()
            if self.exists:
                assert stats.namespaces[NS].vector_count == len(self.model)
                assert [n.name for n in self.index.list_namespaces()] == [NS]
            else:
                assert stats.namespaces == {}

    return WriteModel
