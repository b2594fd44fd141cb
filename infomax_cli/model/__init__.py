"""The networks and where their pixels look: the encoder cases (`encoders`, the built-ins beyond the
study in `cases`), the Deep InfoMax critics and prior (`objectives`), the receptive-field geometry that
says which image pixel each map pixel sees (`geometry`, no torch; measured on any module by `probe`),
the alignment of maps and images by it (`align`), and a case built and checked once a job (`build`)."""
