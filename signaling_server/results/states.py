"""The state of an exam as the community looks it up (登记 / 检查 / 匹配 / 报告 / 审核), from the study's state.

The regional queue's own study states (reading/state.py) are the district's five words, one for one:

    community state   study state    what the community centre may do
    registered 已登记  registered     the order is known; no images have arrived yet
    examined   已检查  examined       images arrived; not yet tied to the regional patient identity
    matched    已匹配  matched        tied to the patient: waiting to be read (or being read, a draft)
    reported   已报告  reported       a reader signed a preliminary report; a senior has yet to approve it (also
                                     after an addendum is signed, until it is approved in turn)
    approved   已审核  approved       a senior approved the report: open, print, download it

An exam whose newest version is `reported` may still hold an earlier approved report (an addendum awaits
approval): the community sees `reported` and can open that approved version meanwhile (`approved_report`).
"""

from __future__ import annotations

from enum import StrEnum

from signaling_server.reading.state import StudyState


class ResultState(StrEnum):
    REGISTERED = "registered"
    EXAMINED = "examined"
    MATCHED = "matched"
    REPORTED = "reported"
    APPROVED = "approved"


_OF_STUDY = {
    StudyState.REGISTERED: ResultState.REGISTERED,
    StudyState.EXAMINED: ResultState.EXAMINED,
    StudyState.MATCHED: ResultState.MATCHED,
    StudyState.REPORTED: ResultState.REPORTED,
    StudyState.APPROVED: ResultState.APPROVED,
}


def of_study(state: str) -> ResultState:
    """The community's state of a study in `state` (one of reading/state.py's StudyState)."""
    return _OF_STUDY[StudyState(state)]
