"""The networks and where their pixels look: the encoder cases (`encoders`), the Deep InfoMax critics
and prior (`objectives`), and the receptive-field geometry that aligns maps with image pixels
(`geometry`)."""
