/** Image encoders that are not CLIP towers: torchvision's ResNets with torchvision's names. */
export { ResNet, BasicBlock, Bottleneck, resnet18, resnet34, resnet50, resnet101, resnet152, type ResNetOptions, type ResNetBlock } from './resnet.js';
