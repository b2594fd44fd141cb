"""A sweep's statistics: the run or sweep read once (`sweep`), intervals over seeds and image units
(`stats`), the test behind each claim (`verdict`), the study's claims (`claims`), and the comparison
that computes them all once and hands them to the renderers (`compare`)."""
