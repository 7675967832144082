"""The hub keeps open streams out of the garbage collector's full collections, and thaws them
periodically so cycles of ended streams are still freed."""

import gc

from app.realtime.hub import THAW_SECONDS, _keep_streams_out_of_gc


def test_new_streams_are_frozen_and_thawed_after_the_period() -> None:
    gc.unfreeze()
    try:
        assert gc.get_freeze_count() == 0
        # Nothing new since the last freeze: nothing happens.
        assert _keep_streams_out_of_gc(3, 3, 10.0, 0.0) == (3, 0.0)
        assert gc.get_freeze_count() == 0
        # New streams opened: what is alive moves to the permanent generation.
        assert _keep_streams_out_of_gc(4, 3, 11.0, 0.0) == (4, 0.0)
        assert gc.get_freeze_count() > 0

        class Cycle:
            me: object

        garbage = Cycle()
        garbage.me = garbage
        gc.freeze()  # an ended stream's cycle, frozen with the rest
        del garbage
        frozen = gc.get_freeze_count()
        # After the period: thawed, collected (the cycle goes) and frozen again.
        assert _keep_streams_out_of_gc(4, 4, THAW_SECONDS + 1, 0.0) == (4, THAW_SECONDS + 1)
        assert 0 < gc.get_freeze_count() < frozen
    finally:
        gc.unfreeze()
